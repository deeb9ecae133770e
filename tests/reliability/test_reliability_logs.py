"""Logs that cost memory or disk: paging a log of long lines with several followers at once."""

from __future__ import annotations

import re
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
    server = start_server(home)
    try:
        script = f"import sys\nfor i in range({count}):\n    sys.stdout.write('%06d ' % i + 'y' * {LINE_CHARS - 8} + '\\n')\n"
        (tmp_path / "long.py").write_text(script)
        final = server.run(f"{sys.executable} {tmp_path / 'long.py'}")
        assert final["exit_code"] == 0
        before = peak_rss_mib(server.proc.pid)

        def follow(_) -> list[int]:
            seen, token = [], None
            while True:
                payload = {"action": "logs", "execution_id": final["execution_id"]}
                if token:
                    payload["next_token"] = token
                status, page = server.call(payload)
                assert status == 200, page
                if not page["events"]:
                    return seen
                seen += [int(e["message"][:6]) for e in page["events"] if re.match(r"^\d{6} y", e["message"])]
                token = page["next_token"]

        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(follow, range(4)))
        peak = peak_rss_mib(server.proc.pid)
    finally:
        stop_server(server)
    assert results == [list(range(count))] * 4, "a follower missed or repeated lines"
    assert peak - before < 100, f"paging took the engine from {before:.0f} to {peak:.0f} MiB"
