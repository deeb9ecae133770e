"""`%mycli stop` on a run that takes its time to end: the stop is said to be requested, the run
to be shutting down — as `mycli stop` says it — not "no exit code" as if the run were lost."""

from __future__ import annotations

import time

from tests.notebook.test_magic import last_handle


def test_stop_of_a_run_still_shutting_down_says_so(engine_ip, capsys):
    # TERM ignored (and by sleep too): the run ends only at the SIGKILL after the grace period,
    # later than the engine's stop answers.
    engine_ip.run_cell("%%mycli --skip-git --bg --out slow\ntrap '' TERM; echo ready; sleep 60")
    handle = last_handle(engine_ip, "slow")
    deadline = time.monotonic() + 30
    while "ready" not in handle.refresh().logs.splitlines() and time.monotonic() < deadline:
        time.sleep(0.1)
    ref = handle.execution_id
    capsys.readouterr()
    engine_ip.run_line_magic("mycli", f"stop {ref}")
    out = capsys.readouterr().out
    assert out.strip() == f"→ Stop requested for execution {ref}; it is shutting down (check: %mycli status {ref})", out
    assert handle.wait(timeout=60).exit_code == 130
