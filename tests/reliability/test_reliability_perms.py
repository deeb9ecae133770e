"""The state dir against other users of the machine: its files are private to the server's user
(checked by a reader running as another uid — the tests run as root, who reads anything), a
state dir another user owns or can write is refused, and a link planted in it is not followed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.engines.test_local_engine import start, wait_for_file
from tests.support.server import clean_env, start_server, stop_server

OTHER_UID = 65534  # `nobody` on Debian; only its number matters to setuid


def _other_user_can_read(path: Path) -> bool:
    """Whether OTHER_UID can list `path` (a directory) or read its first byte (a file); run with
    coreutils, as the interpreter running the tests may sit where that user cannot reach."""
    argv = ["ls", "--", str(path)] if path.is_dir() and not path.is_symlink() else ["head", "-c", "1", "--", str(path)]
    result = subprocess.run(argv, user=OTHER_UID, group=OTHER_UID, extra_groups=[], capture_output=True,
                            text=True, timeout=60, cwd="/")
    assert result.returncode == 0 or "Permission denied" in result.stderr, result.stderr
    return result.returncode == 0


@pytest.fixture
def shared_base():
    """A directory every user can reach, as a real home or /srv would be (pytest's tmp_path
    is private to root, which would hide everything from the other user whatever we did)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as a second user")
    base = Path(tempfile.mkdtemp(prefix="mycli-perms-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _mycli_server(state_dir: Path, home: Path) -> tuple[int | None, str]:
    """Start `mycli server` on `state_dir`: (exit code, stderr), or (None, stderr) when it was
    still serving after 20 s, i.e. it accepted the state dir."""
    proc = subprocess.Popen([sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0", "--state-dir",
                             str(state_dir)], env=clean_env(home), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=20)
        return proc.returncode, err
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 15)
        _, err = proc.communicate()
        return None, err


def test_state_files_are_private_even_in_a_state_dir_that_existed_at_0755(shared_base):
    home = shared_base / "home"
    state_dir = home / "engine"
    state_dir.mkdir(parents=True)
    home.chmod(0o755)
    state_dir.chmod(0o755)
    old_log = state_dir / "server.log"
    old_log.write_text("an earlier server's log\n")
    old_log.chmod(0o644)
    control = shared_base / "readable"
    control.write_text("anyone may read this")
    control.chmod(0o644)
    assert _other_user_can_read(control), "the second user cannot read even a 0644 file: the test proves nothing"

    server = start_server(home)
    try:
        execution_id = start(server, f"echo secret > in-workspace; echo go > {shared_base}/ready; sleep 300")
        wait_for_file(shared_base / "ready")
        private = [state_dir, *state_dir.iterdir(), *(state_dir / "work").iterdir()]
        names = {p.name for p in private}
        assert {"mycli.db", "mycli.db-wal", "mycli.db-shm", "api_key_hash", "server.json", "work",
                execution_id} <= names, names
        for path in private:
            mode = stat.S_IMODE(path.lstat().st_mode)
            assert mode & 0o077 == 0, f"{path} is mode {mode:o}"
        readable = [p for p in [*private, state_dir / "work" / execution_id / "in-workspace"] if _other_user_can_read(p)]
        assert readable == [], f"another user can read {readable}"
        server.call({"action": "stop", "execution_id": execution_id})
    finally:
        stop_server(server)


def test_a_state_dir_another_user_owns_and_anyone_can_write_is_refused(shared_base):
    state_dir = shared_base / "shared-state"
    state_dir.mkdir()
    os.chown(state_dir, OTHER_UID, OTHER_UID)
    state_dir.chmod(0o777)
    code, err = _mycli_server(state_dir, shared_base / "home")
    assert code not in (None, 0), "the server accepted the state dir"
    message = err.strip()
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    assert str(state_dir) in message and "--state-dir" in message, message
    assert list(state_dir.iterdir()) == [], "the server wrote into a state dir it refused"


def test_a_state_dir_of_ours_that_others_can_write_is_refused(shared_base):
    state_dir = shared_base / "open-state"
    state_dir.mkdir()
    state_dir.chmod(0o777)
    code, err = _mycli_server(state_dir, shared_base / "home")
    assert code not in (None, 0), "the server accepted the state dir"
    assert str(state_dir) in err and "chmod 700" in err, err
    assert list(state_dir.iterdir()) == []


def test_a_file_another_user_planted_in_the_state_dir_is_refused(shared_base):
    state_dir = shared_base / "state"
    state_dir.mkdir(mode=0o700)
    planted = state_dir / "mycli.db"
    planted.write_bytes(b"")
    os.chown(planted, OTHER_UID, OTHER_UID)
    code, err = _mycli_server(state_dir, shared_base / "home")
    assert code not in (None, 0), "the server accepted the state dir"
    assert "mycli.db" in err and "Traceback" not in err, err


@pytest.mark.parametrize("name", ["disk-reserve", "server.lock", "api_key_hash", "server.json"])
def test_a_planted_link_in_the_state_dir_is_not_followed(shared_base, name):
    victim = shared_base / "victim"
    victim.write_text("precious")
    state_dir = shared_base / "state"
    state_dir.mkdir(mode=0o700)
    (state_dir / name).symlink_to(victim)
    code, err = _mycli_server(state_dir, shared_base / "home")
    assert victim.read_text() == "precious", f"the server wrote through the planted {name} link"
    assert code not in (None, 0), "the server accepted the state dir"
    assert name in err and "link" in err and "Traceback" not in err, err


def test_the_embedded_start_does_not_write_its_log_through_a_planted_link(shared_base):
    victim = shared_base / "victim"
    victim.write_text("precious")
    home = shared_base / "home"
    (home / "engine").mkdir(parents=True, mode=0o700)
    (home / "engine" / "server.log").symlink_to(victim)
    result = subprocess.run([sys.executable, "-m", "mycli_magic.cli", "list"], env=clean_env(home),
                            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    try:
        assert victim.read_text() == "precious"
        assert result.returncode != 0 and "server.log" in result.stderr and "Traceback" not in result.stderr, result.stderr
    finally:
        subprocess.run([sys.executable, "-m", "mycli_magic.cli", "server", "stop"], env=clean_env(home),
                       capture_output=True, timeout=60)
