"""Artifacts across an engine crash and through pruning: a run the engine was SIGKILLed under has
its outputs collected at the next start; a collection the crash interrupted is done again, or
ends with a reason when the outputs are gone; prune and retention take artifacts and uploads."""

from __future__ import annotations

import os
import signal
import sqlite3
import time

import pytest

from tests.engines.test_files import by_name, follow_to_the_end, start
from tests.support import runtimes
from tests.support.files import artifacts, download, request, state_files, tar_gz, upload
from tests.support.server import start_server, stop_server


@pytest.mark.parametrize("runtime", runtimes.RUNTIMES)
def test_a_run_the_engine_died_under_has_its_outputs_collected_at_the_next_start(tmp_path, runtime):
    runtimes.require(runtime)
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home, runtimes.server_env(runtime))
    try:
        execution_id = start(server, 'echo kept > "$MYCLI_OUTPUTS/kept.txt"; echo written; sleep 120')
        deadline = time.monotonic() + 60
        while "written" not in server.all_lines(execution_id):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait()
    finally:
        stop_server(server)
    restarted = start_server(home, runtimes.server_env(runtime))
    try:
        lines = follow_to_the_end(restarted, execution_id)
        status = restarted.call({"action": "status", "execution_id": execution_id})[1]
        assert status["status"] == "STOPPED" and "Lost" in status["stopped_reason"], status
        listing = artifacts(restarted, execution_id)
        assert listing["complete"] is True and listing["reason"] is None
        assert download(restarted, by_name(listing)["kept.txt"]) == b"kept\n"
        assert "→ Artifacts: 1 file, 5 bytes" in lines
        assert list((home / "engine" / "work").iterdir()) == []
    finally:
        stop_server(restarted)


def test_an_interrupted_collection_is_done_again_or_ends_with_a_reason(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home)
    state = home / "engine"
    try:
        again = start(server, 'echo first > "$MYCLI_OUTPUTS/f.txt"')
        gone = start(server, 'echo lost > "$MYCLI_OUTPUTS/l.txt"')
        for execution_id in (again, gone):
            follow_to_the_end(server, execution_id)
    finally:
        stop_server(server)
    # as the engine leaves things when it dies in the middle of collecting: STOPPED, 'pending',
    # part of the store written; for `again` the outputs are still in its files dir
    outputs = state / "work" / f"{again}.files" / "outputs"
    outputs.mkdir(parents=True)
    (outputs / "f.txt").write_text("first, again\n")
    db = sqlite3.connect(state / "mycli.db")
    db.execute("UPDATE executions SET artifacts_state = 'pending' WHERE execution_id IN (?, ?)", (again, gone))
    db.commit()
    db.close()
    restarted = start_server(home)
    try:
        listing = artifacts(restarted, again)
        assert listing["complete"] and [a["name"] for a in listing["artifacts"]] == ["f.txt"]
        assert download(restarted, listing["artifacts"][0]) == b"first, again\n"
        listing = artifacts(restarted, gone)
        assert listing["complete"] and listing["artifacts"] == [] and "gone" in listing["reason"], listing
        assert not (state / "artifacts" / gone).exists()
        assert any(line.startswith("✗ Artifacts: none collected") for line in restarted.all_lines(gone))
    finally:
        stop_server(restarted)


def test_prune_takes_artifacts_and_uploads_with_the_executions(tmp_path):
    server = start_server(tmp_path)
    try:
        upload_id = upload(server, tar_gz({"a": (b"a", 0o644)}))
        execution_id = start(server, 'cp "$MYCLI_INPUTS/a" "$MYCLI_OUTPUTS/a"', inputs=upload_id)
        follow_to_the_end(server, execution_id)
        url = by_name(artifacts(server, execution_id))["a"]["url"]
        assert state_files(server.state_dir, "artifacts", "uploads")
        status, body = server.call({"action": "prune", "older_than_days": 0})
        assert status == 200 and body["pruned"] >= 1, body
        assert state_files(server.state_dir, "artifacts", "uploads") == []
        assert request(server, "GET", url)[0] == 404
        status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": upload_id})
        assert status == 400 and upload_id in body["error"], body
        db = sqlite3.connect(server.state_dir / "mycli.db")
        assert db.execute("SELECT count(*) FROM artifacts").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM uploads").fetchone()[0] == 0
        db.close()
    finally:
        stop_server(server)
