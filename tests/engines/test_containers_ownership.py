"""The engine runs as an ordinary user, the container's command as root (rootful docker): the
engine must still be able to delete what the command wrote — nested directories root owns and
closed to others — after a normal end (a final chown inside the container) and after a stop
that had to kill (the chown never ran: a container of the probe image empties the workspace).
"""

from __future__ import annotations

import pwd
import shutil
import time

import pytest

from tests.support import runtimes
from tests.support.as_user import USER, docker_engine_as_user, files_under
from tests.support.server import stop_server

WRITE = "mkdir -p deep/er/still && echo x > deep/er/still/file && chmod 700 deep deep/er && ls -ln deep | head -3"

pytestmark = pytest.mark.containers


@pytest.fixture(scope="module")
def user_engine():
    runtimes.require("docker")
    server, relay, base = docker_engine_as_user(runtimes.server_env("docker"))
    yield server
    stop_server(server)
    relay.close()
    shutil.rmtree(base, ignore_errors=True)


def test_what_root_wrote_in_the_container_is_deleted_after_a_normal_end(user_engine):
    final = user_engine.run(f"id -u; {WRITE}")
    lines = user_engine.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, lines
    assert "0" in lines  # the command ran as root in the container
    assert user_engine.state_dir.stat().st_uid == pwd.getpwnam(USER).pw_uid  # and the engine as nobody
    assert files_under(user_engine.state_dir / "work") == []
    assert emptied_as_root(user_engine) == []  # the container gave its files back: no cleanup container was needed


def emptied_as_root(server) -> list[str]:
    return [line for line in (server.home / "server-test.log").read_text().splitlines() if "emptying" in line]


def test_what_root_wrote_is_deleted_after_a_stop_that_had_to_kill(user_engine):
    status, body = user_engine.call({"action": "exec", "skip_git": True,
                                     "command": f"trap '' TERM; {WRITE}; echo started; while :; do sleep 0.2; done"})
    assert status == 200, body
    deadline = time.monotonic() + 60
    while "started" not in user_engine.all_lines(body["execution_id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    user_engine.call({"action": "stop", "execution_id": body["execution_id"]})
    final = user_engine.wait(body["execution_id"])
    assert (final["status"], final["exit_code"]) == ("STOPPED", 130)
    assert files_under(user_engine.state_dir / "work") == []
    assert [line for line in emptied_as_root(user_engine) if body["execution_id"] in line]  # the fallback did it
    assert runtimes.containers_of("docker", body["execution_id"]) == []


OUTPUTS = ('mkdir -p "$MYCLI_OUTPUTS/closed" && echo private > "$MYCLI_OUTPUTS/closed/p.txt" && '
           'chmod 600 "$MYCLI_OUTPUTS/closed/p.txt" && chmod 700 "$MYCLI_OUTPUTS/closed"')


def test_outputs_root_wrote_and_closed_are_collected_after_a_normal_end(user_engine):
    from tests.support.files import artifacts, download

    final = user_engine.run(OUTPUTS)
    assert final["exit_code"] == 0
    listing = artifacts(user_engine, final["execution_id"])
    assert [a["name"] for a in listing["artifacts"]] == ["closed/p.txt"], listing  # the final chown gave them back
    assert download(user_engine, listing["artifacts"][0]) == b"private\n"
    assert files_under(user_engine.state_dir / "work") == []


def test_outputs_root_kept_closed_after_a_kill_are_skipped_saying_why(user_engine):
    from tests.support.files import artifacts

    status, body = user_engine.call({"action": "exec", "skip_git": True,
                                     "command": f"trap '' TERM; {OUTPUTS}; echo started; while :; do sleep 0.2; done"})
    assert status == 200, body
    deadline = time.monotonic() + 60
    while "started" not in user_engine.all_lines(body["execution_id"]) and time.monotonic() < deadline:
        time.sleep(0.1)
    user_engine.call({"action": "stop", "execution_id": body["execution_id"]})
    user_engine.wait(body["execution_id"])
    listing = artifacts(user_engine, body["execution_id"])
    assert listing["complete"] and listing["artifacts"] == [], listing
    assert any(line.startswith("closed/") and "Permission denied" in line for line in listing["skipped"]), listing
    assert files_under(user_engine.state_dir / "work") == []  # emptied as the container's root
