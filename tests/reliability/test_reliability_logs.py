"""Logs that cost memory or disk: paging long lines with several followers at once, the
per-execution log cap, and pruning old executions (on demand and by the retention setting)."""

from __future__ import annotations

import re
import sqlite3
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.support.server import start_server, stop_server

LINE_CHARS = 256 * 1024


def peak_rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        return int(re.search(r"VmHWM:\s+(\d+) kB", fh.read()).group(1)) / 1024


def test_paging_long_lines_with_four_followers_keeps_engine_memory_bounded(tmp_path):
    count = 400  # 100 MiB of log: one unbounded page would hold all of it
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, extra_env={"MYCLI_MAX_LOG_MB": "0"})  # no cap: the whole log is kept
    try:
        script = f"import sys\nfor i in range({count}):\n    sys.stdout.write('%06d ' % i + 'y' * {LINE_CHARS - 8} + '\\n')\n"
        (tmp_path / "long.py").write_text(script)
        final = server.run(f"{sys.executable} {tmp_path / 'long.py'}")
        assert final["exit_code"] == 0
        before = peak_rss_mib(server.proc.pid)

        def follow(_) -> list[int]:
            return [int(e["message"][:6]) for page in server.pages(final["execution_id"])
                    for e in page["events"] if re.match(r"^\d{6} y", e["message"])]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(follow, range(4)))
        peak = peak_rss_mib(server.proc.pid)
    finally:
        stop_server(server)
    assert results == [list(range(count))] * 4, "a follower missed or repeated lines"
    assert peak - before < 100, f"paging took the engine from {before:.0f} to {peak:.0f} MiB"


CAP_NOTE = re.compile(r"^\[mycli: the log reached its cap of 1 MiB here .*kept only in its last 102\.4 KiB, at the end\]$")
CUT_NOTE = re.compile(r"^\[mycli: ([\d,]+) lines? \(([\d.,]+ (?:bytes?|[KMG]iB))\) left out here \(the log's cap\); "
                      r"the last ([\d,]+) lines follow\]$")


def test_the_log_cap_keeps_the_head_and_the_tail_and_counts_what_it_left_out(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, extra_env={"MYCLI_MAX_LOG_MB": "1"})
    try:
        status, body = server.call({"action": "exec", "command": "seq 1 300000; echo LAST-LINE; exit 7", "skip_git": True})
        assert status == 200, body
        final = server.wait(body["execution_id"], timeout=120)
        assert (final["status"], final["exit_code"]) == ("STOPPED", 7), final
        lines = server.all_lines(final["execution_id"])
    finally:
        stop_server(server)
    cap = [i for i, line in enumerate(lines) if CAP_NOTE.match(line)]
    cut = [i for i, line in enumerate(lines) if CUT_NOTE.match(line)]
    assert len(cap) == 1 and len(cut) == 1 and cap[0] < cut[0], lines[-10:]
    head = [int(line) for line in lines[:cap[0]] if line.isdigit()]
    tail = [int(line) for line in lines[cut[0]:] if line.isdigit()]
    assert head == list(range(1, len(head) + 1)) and lines[cap[0] - 1] == str(len(head)), "the cap note is not where the log was cut"
    assert tail == list(range(tail[0], 300001)), "the tail is not the output's last lines, in order"
    assert lines[cap[0] + 1: cut[0]] == [], "nothing is stored between the cap note and the tail's note"
    left_out, size, kept = CUT_NOTE.match(lines[cut[0]]).groups()
    assert int(left_out.replace(",", "")) == tail[0] - 1 - len(head), "the count of lines left out is not exact"
    after = lines[cut[0] + 1:]
    assert int(kept.replace(",", "")) == len(after)  # the run's own last lines: no engine note after them here
    assert "LAST-LINE" in after and any("exit code: 7" in line for line in after), after[-8:]  # the script's own end
    assert len(lines) < 60000  # the database holds the capped log, not 300,000 rows


def _db_ids(state_dir) -> set[str]:
    db = sqlite3.connect(state_dir / "mycli.db")
    try:
        ids = {eid for (eid,) in db.execute("SELECT DISTINCT execution_id FROM log_lines")}
        return ids | {eid for (eid,) in db.execute("SELECT execution_id FROM executions")}
    finally:
        db.close()


def test_prune_removes_finished_executions_their_lines_and_workspaces_not_running_ones(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home)
    try:
        done = [server.run(f"echo run {k}")["execution_id"] for k in range(3)]
        status, body = server.call({"action": "exec", "command": "sleep 300", "skip_git": True})
        running = body["execution_id"]
        stray = server.state_dir / "work" / "0123456789ab"  # a workspace nothing runs in any more
        stray.mkdir()
        (stray / "left-behind").write_text("x")
        for bad in (-1, "7", True, 10 ** 9):
            assert server.call({"action": "prune", "older_than_days": bad})[0] == 400, bad
        status, body = server.call({"action": "prune", "older_than_days": 0})
        assert status == 200, body
        assert body["pruned"] == 3, body
        for execution_id in done:
            assert server.call({"action": "status", "execution_id": execution_id})[0] == 404
        assert server.call({"action": "status", "execution_id": running})[1]["status"] == "RUNNING"
        assert not stray.exists()
        assert (server.state_dir / "work" / running).is_dir()
        assert _db_ids(server.state_dir) == {running}
        server.call({"action": "stop", "execution_id": running})
    finally:
        stop_server(server)


def test_retention_prunes_old_executions_when_the_engine_starts(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home)
    try:
        old, recent = (server.run(f"echo {name}")["execution_id"] for name in ("old", "recent"))
    finally:
        stop_server(server)
    db = sqlite3.connect(home / "engine" / "mycli.db")
    db.execute("UPDATE executions SET created_at = created_at - 40 * 86400 WHERE execution_id = ?", (old,))
    db.execute("UPDATE executions SET created_at = created_at - 20 * 86400 WHERE execution_id = ?", (recent,))
    db.commit()
    db.close()
    server = start_server(home, extra_env={"MYCLI_RETENTION_DAYS": "30"})
    try:
        assert server.call({"action": "status", "execution_id": old})[0] == 404
        assert server.call({"action": "status", "execution_id": recent})[0] == 200
        assert "recent" in server.all_lines(recent)
    finally:
        stop_server(server)
    assert old not in _db_ids(home / "engine")


def test_bad_log_settings_are_refused_at_start_in_one_line(tmp_path):
    for name, value, bounds in (("MYCLI_MAX_LOG_MB", "lots", "from 0 to 1048576 "),
                                ("MYCLI_RETENTION_DAYS", "-3", "from 0 to ")):
        home = tmp_path / name
        home.mkdir()
        try:
            start_server(home, extra_env={name: value})
        except RuntimeError as exc:
            message = str(exc)
        else:
            raise AssertionError(f"{name}={value} was accepted")
        assert name in message and bounds in message and "Traceback" not in message, message
        assert "e+" not in message, message  # whole numbers, as a person writes them


def test_an_engine_note_past_the_cap_stays_in_order_after_the_lines_before_it(tmp_path):
    from orchestrator.engines.local_lines import LineSink
    from orchestrator.engines.local_store import Store

    store, ident = Store(tmp_path / "mycli.db"), "6b0bb0a4bb81"
    sink = LineSink(store, ident, max_bytes=10 * 1024)  # a head of ~9 KiB, a tail of 1 KiB
    sink.emit([f"{i:05d}" for i in range(1, 2001)])
    sink.emit(["✗ Timed out after 2 s"], note=True)
    sink.emit(["after-the-note"])
    sink.end_of_output()
    sink.flush_final()
    lines = [message for _, _, message, _ in store.read_lines(ident, 0, 100_000, 1 << 30)]
    cap = next(i for i, line in enumerate(lines) if line.startswith("[mycli: the log reached its cap"))
    cut = CUT_NOTE.match(lines[cap + 1])
    assert cut, lines[cap:cap + 3]
    note = lines.index("✗ Timed out after 2 s")
    head, tail = lines[:cap], lines[cap + 2:note]
    assert head + tail == [f"{i:05d}" for i in range(1, len(head) + 1)] + [f"{i:05d}" for i in range(2001 - len(tail), 2001)]
    assert int(cut.group(1).replace(",", "")) == 2000 - len(head) - len(tail) and int(cut.group(3)) == len(tail)
    assert lines[note + 1:] == ["after-the-note"]  # nothing left out since the note: no second count
