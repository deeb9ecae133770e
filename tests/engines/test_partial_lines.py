"""Output without a newline on the embedded engine, over real HTTP with real processes: a pending
partial line is sent after a short idle, and the stored log still gives back the exact output,
whatever the page size."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from orchestrator.engine import MAX_EVENT_CHARS
from orchestrator.engines.local_store import Store


def start(server, command: str) -> str:
    status, body = server.call({"action": "exec", "command": command, "skip_git": True})
    assert status == 200, body
    return body["execution_id"]


def output(events: list[dict]) -> str:
    """The rule clients follow: every message, then a newline unless the event is partial."""
    return "".join(e["message"] + ("" if e.get("partial") else "\n") for e in events)


def command_output(text: str) -> str:
    return text.split("Executing command...\n━━━━━━━━━━━━━━━━━━━━\n\n", 1)[1].split("\n━━━━", 1)[0]


def test_a_partial_line_is_sent_before_its_newline_and_the_log_stays_exact(server, tmp_path):
    flag = tmp_path / "go"
    execution_id = start(server, f"printf 'working…'; while [ ! -e {flag} ]; do sleep 0.05; done; printf ' done\\n'")
    deadline, seen = time.monotonic() + 30, []
    while not any(e["message"] == "working…" for e in seen):  # it comes while the command still waits
        assert time.monotonic() < deadline, f"the partial line never came: {seen[-3:]}"
        seen = server.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 2})[1]["events"]
    assert [e for e in seen if e["message"] == "working…"][0]["partial"] is True
    flag.touch()
    server.wait(execution_id)
    events = [e for page in server.pages(execution_id, limit=10_000) for e in page["events"]]
    assert "working… done\n" in command_output(output(events))
    # every page size gives back the same bytes, the page boundaries falling anywhere
    for limit in (1, 2, 3):
        assert output([e for page in server.pages(execution_id, limit) for e in page["events"]]) == output(events)
    # and the API's text form shows the line once, continued, with one time prefix
    text = server.call({"action": "logs", "execution_id": execution_id})[1]["logs"]
    assert text.count("working…") == 1 and text.split("working…", 1)[1].startswith(" done\n")


def test_an_unended_last_line_and_an_over_long_line_come_back_exact(server):
    long_line = "x" * (MAX_EVENT_CHARS + 10)
    execution_id = start(server, f"printf 'no newline at the end'; sleep 0.5; "
                                 f"head -c {len(long_line)} /dev/zero | tr '\\0' x; echo; printf 'tail'")
    server.wait(execution_id)
    events = [e for page in server.pages(execution_id, limit=10_000) for e in page["events"]]
    assert all(len(e["message"]) <= MAX_EVENT_CHARS for e in events)
    # the script's report starts with `echo`, which ends the command's last line
    assert command_output(output(events)) == f"no newline at the end{long_line}\ntail"


def test_a_state_dir_from_before_partial_lines_gets_the_column(tmp_path: Path):
    path = tmp_path / "mycli.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE log_lines (execution_id TEXT NOT NULL, seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, "
                "message TEXT NOT NULL, PRIMARY KEY (execution_id, seq)) WITHOUT ROWID")
    old.execute("INSERT INTO log_lines VALUES ('6b0bb0a4bb81', 1, 0, 'an old line')")
    old.commit()
    old.close()
    store = Store(path)
    store.append_lines("6b0bb0a4bb81", [(2, 1, "new", 1)])
    assert store.read_lines("6b0bb0a4bb81", 0, 10, 1 << 20) == [(1, 0, "an old line", 0), (2, 1, "new", 1)]
