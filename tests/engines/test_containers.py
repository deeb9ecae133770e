"""What only a container runtime does, on docker and podman alike: pulling a missing image (from a
local docker-registry on 127.0.0.1), failing to, an image the script cannot run in, and keeping
the container away from the engine (its state dir, database and environment)."""

from __future__ import annotations

import io
import os
import re
import socket
import tarfile
import threading
import time

import pytest

from tests.support import runtimes
from tests.support.server import start_server, stop_server

SENTINEL = "engine-only-sentinel-7f3a"


@pytest.fixture
def fresh_engine(container_runtime, tmp_path):
    """An engine of its own: nothing it has seen (images it found) carries over from other tests."""
    server = start_server(tmp_path, runtimes.server_env(container_runtime, ENGINE_SENTINEL=SENTINEL))
    yield server
    stop_server(server)


def remove_image(runtime: str, image: str) -> None:
    runtimes.client(runtime, "rmi", "-f", image)
    assert runtimes.client(runtime, "image", "inspect", image).returncode != 0, f"{image} is still there"


def test_a_missing_image_is_pulled_with_its_progress_in_the_log(fresh_engine):
    runtime, image = fresh_engine.runtime, os.environ["MYCLI_TEST_REGISTRY_IMAGE"]
    remove_image(runtime, image)
    try:
        final = fresh_engine.run("echo ran in the pulled image", image=image)
        lines = fresh_engine.all_lines(final["execution_id"])
        assert (final["exit_code"], final["stop_code"]) == (0, "EssentialContainerExited"), lines
        pulling = lines.index(f"→ Pulling {image} ({runtime} pull)...")
        pulled = lines.index(f"✓ Pulled {image}")
        assert pulled - pulling >= 2  # the runtime's own progress lines, between the two
        assert lines.index("ran in the pulled image") > pulled
        again = fresh_engine.run("true", image=image)  # present now: no second pull
        assert not [line for line in fresh_engine.all_lines(again["execution_id"]) if "Pulling" in line]
    finally:
        remove_image(runtime, image)  # so the next run of this test pulls again


@pytest.mark.parametrize("which", ["absent from the registry", "no registry there"])
def test_an_image_that_cannot_be_pulled_ends_the_run_as_could_not_start(fresh_engine, which):
    image = os.environ["MYCLI_TEST_REGISTRY_MISSING"] if which.startswith("absent") else "127.0.0.1:1/mycli-test/none:1"
    final = fresh_engine.run("echo never", image=image)  # wait() gives up after 60 s: a hang fails
    lines = fresh_engine.all_lines(final["execution_id"])
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", 200, "TaskFailedToStart"), lines
    said = f"image not found: {image} (" if which.startswith("absent") else f"could not pull {image} ("  # it may exist
    assert final["stopped_reason"].startswith(said), final["stopped_reason"]
    assert f"✗ {final['stopped_reason']}" in lines and "never" not in lines
    assert runtimes.containers_of(fresh_engine.runtime, final["execution_id"]) == []


def test_an_image_without_a_shell_cannot_start_the_command(fresh_engine, tmp_path):
    """The runtime itself fails (127, the container's /bin/sh is missing) before the script runs:
    that is 'could not start' (200), not the command's own 127."""
    runtime = fresh_engine.runtime
    image = "localhost/mycli-test/no-shell:1"
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        info = tarfile.TarInfo("README")
        info.size = 9
        tar.addfile(info, io.BytesIO(b"no shell\n"))
    imported = runtimes.client(runtime, "import", "-", image, input_bytes=data.getvalue())
    assert imported.returncode == 0, imported.stdout + imported.stderr
    try:
        final = fresh_engine.run("echo never", image=image)
        assert (final["exit_code"], final["stop_code"]) == (200, "TaskFailedToStart"), fresh_engine.all_lines(final["execution_id"])
        # docker: 127 from the runtime; podman: 1 from catatonit, its init ("failed to exec pid1")
        assert re.fullmatch(rf"Could not start the container \({runtime} exited (127|1); the log says why\)",
                            final["stopped_reason"]), final["stopped_reason"]
        assert fresh_engine.run("exit 127")["exit_code"] == 127  # a command's own 127 stays its own
    finally:
        runtimes.client(runtime, "rmi", "-f", image)


def test_a_container_sees_its_workspace_and_nothing_of_the_engine(fresh_engine):
    state = fresh_engine.state_dir
    command = (f"for p in {state} {state}/mycli.db {state}/api_key_hash {fresh_engine.home}; do "
               "if [ -e $p ]; then echo visible $p; else echo hidden $p; fi; done; "
               "echo env:; env | sort; echo mounts:; cut -d' ' -f5 /proc/self/mountinfo | grep -E '^/(workspace|mycli)'; "
               "mkdir -p deep/er && echo x > deep/er/file && echo wrote")
    final = fresh_engine.run(command)
    lines = fresh_engine.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, lines
    assert [line for line in lines if line.startswith(("visible", "hidden"))] == [
        f"hidden {p}" for p in (state, state / "mycli.db", state / "api_key_hash", fresh_engine.home)]
    env = lines[lines.index("env:") + 1:lines.index("mounts:")]
    names = {line.split("=", 1)[0] for line in env}
    assert not [line for line in env if SENTINEL in line]
    assert not names & {"DOCKER_HOST", "CONTAINERS_CONF", "ENGINE_SENTINEL", "MYCLI_HOME", "API_KEY_HASH"}
    assert {"MYCLI_EXECUTION_ID", "PYTHONUNBUFFERED", "MYCLI_INPUTS", "MYCLI_OUTPUTS"} <= names
    assert sorted(lines[lines.index("mounts:") + 1:lines.index("wrote")]) == [
        "/mycli", "/mycli/inputs", "/mycli/outputs", "/workspace"]  # the run's own files, nothing of the engine's
    assert not (state / "work" / final["execution_id"]).exists()  # what it wrote is gone with it
    assert not (state / "work" / f"{final['execution_id']}.mycli").exists()


@pytest.fixture
def stalling_registry():
    """A registry that accepts connections and never answers: a pull waits on it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held, stop = [], threading.Event()

    def hold():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


def test_a_pull_that_hangs_ends_with_the_timeout_or_a_stop(fresh_engine, stalling_registry):
    image = f"{stalling_registry}/mycli-test/stalled:1"
    timed = fresh_engine.run("echo never", image=image, timeout_seconds=3)
    assert (timed["exit_code"], timed["stop_code"]) == (124, "Timeout"), fresh_engine.all_lines(timed["execution_id"])
    assert timed["stopped_reason"] == "Timed out after 3 s while pulling the image, the run's --timeout"
    status, body = fresh_engine.call({"action": "exec", "command": "echo never", "skip_git": True, "image": image})
    assert status == 200, body
    deadline = time.monotonic() + 30
    while not any("Pulling" in line for line in fresh_engine.all_lines(body["execution_id"])):
        assert time.monotonic() < deadline, "the pull never started"
        time.sleep(0.1)
    fresh_engine.call({"action": "stop", "execution_id": body["execution_id"]})
    stopped = fresh_engine.wait(body["execution_id"], timeout=30)
    assert (stopped["exit_code"], stopped["stop_code"]) == (130, "UserInitiated")
    assert runtimes.containers_of(fresh_engine.runtime, body["execution_id"]) == []


def test_a_stop_sent_right_after_the_exec_reaches_the_container(fresh_engine):
    """The container does not run yet when the stop comes (its client was just started): the TERM
    waits for it and ends the command — not the SIGKILL after the grace period, which is what a
    TERM lost on the way leaves."""
    status, body = fresh_engine.call({"action": "exec", "command": "echo started; sleep 60", "skip_git": True})
    assert status == 200, body
    execution_id = body["execution_id"]
    while fresh_engine.call({"action": "status", "execution_id": execution_id})[1]["status"] == "PENDING":
        pass  # RUNNING: the runtime's client has started; its container takes a moment more
    assert fresh_engine.call({"action": "stop", "execution_id": execution_id})[0] == 200
    final = fresh_engine.wait(execution_id)
    lines = fresh_engine.all_lines(execution_id)
    assert (final["exit_code"], final["stop_code"]) == (130, "UserInitiated"), lines
    assert not [line for line in lines if "killed (SIGKILL)" in line], lines
    assert runtimes.containers_of(fresh_engine.runtime, execution_id) == []
