"""Processes a command leaves behind on purpose: `setsid … &` children and double-forked daemons
leave the process group, keep (or close) the output pipe, and must still end with the run —
on a timeout, a stop, and a normal end — without wedging it in RUNNING."""

from __future__ import annotations

import pytest

from tests.engines.test_local_engine import alive, start, wait_for_file

# A child in a session of its own (it survives a signal to the script's group) that keeps the
# output pipe open, and a grandchild of it in a second session that closed every output.
ESCAPE = ("setsid sh -c 'echo $$ > {d}/escaped; sleep 300 & echo $! > {d}/grandchild; exec sleep 300' & "
          "setsid sh -c 'echo $$ > {d}/silent; exec sleep 300' </dev/null >/dev/null 2>&1 & "
          "while [ ! -s {d}/escaped ] || [ ! -s {d}/grandchild ] || [ ! -s {d}/silent ]; do sleep 0.05; done; ")


def _escapees(tmp_path) -> list[int]:
    return [int(wait_for_file(tmp_path / name)) for name in ("escaped", "grandchild", "silent")]


@pytest.mark.parametrize("code", [0, 3])
def test_normal_end_keeps_the_scripts_code_and_kills_escaped_descendants(server, tmp_path, code):
    execution_id = start(server, ESCAPE.format(d=tmp_path) + f"echo done; exit {code}")
    pids = _escapees(tmp_path)
    final = server.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"]) == ("STOPPED", code), final
    assert [pid for pid in pids if alive(pid)] == [], "a descendant outlived the run"
    assert "done" in server.all_lines(execution_id)


def test_timeout_ends_a_run_with_escaped_descendants_with_124(server, tmp_path):
    execution_id = start(server, ESCAPE.format(d=tmp_path) + "sleep 300", timeout_seconds=2)
    pids = _escapees(tmp_path)
    final = server.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"]) == ("STOPPED", 124), final
    assert [pid for pid in pids if alive(pid)] == []


def test_stop_ends_a_run_with_escaped_descendants_with_130(server, tmp_path):
    execution_id = start(server, ESCAPE.format(d=tmp_path) + "sleep 300")
    pids = _escapees(tmp_path)
    status, body = server.call({"action": "stop", "execution_id": execution_id})
    assert status == 200, body
    final = server.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"]) == ("STOPPED", 130), final
    assert [pid for pid in pids if alive(pid)] == []


def test_stop_reaches_an_escaped_descendant_that_ignores_term(server, tmp_path):
    command = (f"setsid sh -c 'trap \"\" TERM; echo $$ > {tmp_path}/stubborn; while :; do sleep 0.1; done' & "
               f"while [ ! -s {tmp_path}/stubborn ]; do sleep 0.05; done; sleep 300")
    execution_id = start(server, command)
    stubborn = int(wait_for_file(tmp_path / "stubborn"))
    server.call({"action": "stop", "execution_id": execution_id})
    final = server.wait(execution_id, timeout=60)
    assert (final["status"], final["exit_code"]) == ("STOPPED", 130), final
    assert not alive(stubborn)

