"""The host-fallback ⚠ line: an engine on `auto` that found no container runtime runs every later
run on the host until it is restarted (it probes once, when it starts). The line says since when
and how to redo it; the engine's record carries when it chose (`host_fallback_at`). docker and
podman are pointed at no daemon, so the fallback happens whatever this machine runs."""

from __future__ import annotations

import calendar
import re
import time

from mycli_magic.engine_notes import notice_text
from tests.support.cli import Cli

NO_RUNTIME = {"MYCLI_LOCAL_RUNTIME": "auto", "DOCKER_HOST": "unix:///nonexistent/docker.sock",
              "CONTAINER_HOST": "unix:///nonexistent/podman.sock"}
FIX = ("; to look for docker/podman again: mycli server stop, then run again; MYCLI_LOCAL_RUNTIME=docker makes a "
       "missing runtime an error instead of a fallback)")


def epoch(value: str) -> int:
    return calendar.timegm(time.strptime(value, "%Y-%m-%dT%H:%M:%SZ"))


def test_the_line_says_since_when_the_engine_chose_the_host_and_how_to_redo_it(tmp_path):
    cli = Cli(tmp_path / "home", NO_RUNTIME)
    cli.home.mkdir()
    try:
        first = cli.exec_json("--skip-git", "--wait", "true", cwd=tmp_path)  # starts the engine: it settles on the host
        assert first["runtime"] == "host" and first["notice"] is None and first["host_fallback_at"]
        imaged = cli.run("exec", "--image", "alpine:3.20", "--skip-git", "--wait", "echo hi", cwd=tmp_path)
        assert imaged.returncode == 0, imaged.stderr
        notices = [line for line in imaged.stderr.splitlines() if line.startswith("⚠")]
        assert len(notices) == 1, imaged.stderr
        said = re.fullmatch(r"⚠ image alpine:3\.20 ignored: no container runtime; ran on the host \(chosen when the "
                            r"engine started (\d+) s ago" + re.escape(FIX), notices[0])
        assert said, notices[0]
        record = cli.exec_json("--image", "alpine:3.20", "--skip-git", "true", cwd=tmp_path)
        chosen, created = epoch(record["host_fallback_at"]), epoch(record["created_at"])
        assert record["host_fallback_at"] == first["host_fallback_at"] and chosen <= created  # the start's, kept
        assert cli.run("server", "stop").returncode == 0  # the fix the line names: a new engine probes again
        again = cli.exec_json("--image", "alpine:3.20", "--skip-git", "true", cwd=tmp_path)
        assert again["runtime"] == "host" and epoch(again["host_fallback_at"]) >= chosen
    finally:
        cli.stop_engine()


def test_a_host_asked_for_gets_the_plain_line(tmp_path):
    cli = Cli(tmp_path / "home", {**NO_RUNTIME, "MYCLI_LOCAL_RUNTIME": "host"})
    cli.home.mkdir()
    try:
        imaged = cli.run("exec", "--image", "alpine:3.20", "--skip-git", "--wait", "echo hi", cwd=tmp_path)
        assert imaged.returncode == 0, imaged.stderr
        notices = [line for line in imaged.stderr.splitlines() if line.startswith("⚠")]
        assert notices == ["⚠ image alpine:3.20 ignored: MYCLI_LOCAL_RUNTIME=host; ran on the host"]
        assert cli.exec_json("--skip-git", "true", cwd=tmp_path)["host_fallback_at"] is None
    finally:
        cli.stop_engine()


def test_the_age_is_said_in_the_cli_s_words():
    run = {"notice": "image alpine ignored: no container runtime; ran on the host", "host_fallback_at": "2026-01-01T10:00:00Z"}
    at = calendar.timegm((2026, 1, 1, 12, 1, 5, 0, 0, 0))
    assert notice_text(run, "mycli server stop", now=at) == (
        "image alpine ignored: no container runtime; ran on the host (chosen when the engine started 2 h 01 min ago" + FIX)
    assert notice_text({**run, "host_fallback_at": None}, "mycli server stop", now=at) == run["notice"]
    assert notice_text({"notice": None}, "mycli server stop") is None
