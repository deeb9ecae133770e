"""Injection corpus over real HTTP: every hostile value is rejected (400) or arrives byte for
byte; a canary file proves nothing else ever ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestrator.shell import NOT_STARTED_EXIT_CODE
from tests.support.git_repos import make_repo


@pytest.fixture(scope="module")
def canary_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("injection")


@pytest.fixture(scope="module")
def repo(canary_dir) -> Path:
    return make_repo(canary_dir / "repo", files={"f": "x\n"})


def corpus(canary: Path) -> list[str]:
    touch = f"touch {canary}"
    nospace = f"touch${{IFS}}{canary}"
    return [
        f"'; {touch}; '", f"\"; {touch}; \"", f"$({touch})", f"`{touch}`", f"$({nospace})", f"`{nospace}`",
        f"\n{touch}\n", f"x\n{touch}", f"x\r{touch}", f"a\x00{touch}", f"; {touch}", f"| {touch}", f"&& {touch}",
        f"--upload-pack={touch}", f"--upload-pack={nospace}", f"-u{nospace}", f"--config=core.sshCommand={nospace}",
        f"ext::sh -c {touch}", f"ext::{nospace}", "fd::0", f"ssh://-oProxyCommand={nospace}/x",
        f"-oProxyCommand={nospace}:x", f"x'\\''{nospace}", f"\\'{nospace}", f"x$({nospace})",
        "héllo ✓ 日本語 🚀", "main;" + nospace, "main$(" + nospace + ")", "'", "\\",
    ]


def assert_clean(canary: Path) -> None:
    assert not canary.exists(), "an injected value ran a command"


def exec_or_400(server, payload: dict) -> dict | None:
    """None when refused with 400; the final status when it ran."""
    status, body = server.call({"action": "exec", **payload})
    if status == 400:
        assert body["error"].startswith("invalid request: ")
        return None
    assert status == 200, body
    return server.wait(body["execution_id"])


def test_command_arrives_byte_for_byte(server, canary_dir):
    canary = canary_dir / "CANARY-command"
    for n, payload in enumerate(corpus(canary)):
        out = canary_dir / f"command-{n}.out"
        command = f"cat > {out} <<'MYCLI_INJECTION_END'\n{payload}\nMYCLI_INJECTION_END"
        final = exec_or_400(server, {"command": command, "skip_git": True})
        if "\x00" in payload:
            assert final is None
            continue
        assert final is not None and final["exit_code"] == 0, (payload, final)
        assert out.read_bytes() == (payload + "\n").encode(), payload
        assert final["command"] == command  # and the API hands it back unchanged
    assert_clean(canary)


@pytest.mark.parametrize("field", ["repo", "repo_suffix", "branch", "image"])
def test_git_and_image_fields_never_run_anything(server, canary_dir, repo, field):
    canary = canary_dir / f"CANARY-{field}"
    ran = 0
    for payload in corpus(canary):
        request = {"command": "true", "repo": str(repo)}
        if field == "repo":
            request["repo"] = payload
        elif field == "repo_suffix":
            request["repo"] = f"file://{repo}{payload}"
        elif field == "branch":
            request["branch"] = payload
        else:
            request["image"] = payload
        final = exec_or_400(server, request)
        if final is not None:
            ran += 1
            if field != "image":
                assert final["exit_code"] == NOT_STARTED_EXIT_CODE, (payload, final)  # the clone failed, nothing more
            status, echoed = server.call({"action": "status", "execution_id": final["execution_id"]})
            assert echoed[field.replace("_suffix", "")] == request[field.replace("_suffix", "")]
    assert_clean(canary)
    assert ran < len(corpus(canary))  # most are refused at the door


def test_env_keys_are_refused(server, canary_dir):
    canary = canary_dir / "CANARY-env-key"
    for payload in corpus(canary):
        status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "env": {payload: "x"}})
        assert status == 400 and "env" in body["error"], payload
    assert_clean(canary)


def test_env_values_arrive_byte_for_byte(server, canary_dir):
    canary = canary_dir / "CANARY-env-value"
    values = {f"V{n}": p for n, p in enumerate(corpus(canary)) if "\x00" not in p}
    out = canary_dir / "env.json"
    command = ("python3 -c 'import json, os, sys; json.dump({k: os.environ[k] for k in sys.argv[1:]}, "
               f"open(\"{out}\", \"w\"))' " + " ".join(values))
    final = exec_or_400(server, {"command": command, "skip_git": True, "env": values})
    assert final is not None and final["exit_code"] == 0, final
    assert json.loads(out.read_text()) == values
    assert sorted(final["env_keys"]) == sorted(values)
    nul = exec_or_400(server, {"command": "true", "skip_git": True, "env": {"A": f"x\x00touch {canary}"}})
    assert nul is None
    assert_clean(canary)


def test_env_values_stay_out_of_responses_and_logs(server, canary_dir):
    final = exec_or_400(server, {"command": "true", "skip_git": True, "env": {"SECRET_VALUE": "s3cr3t-v4lue-77"}})
    assert final is not None and "s3cr3t-v4lue-77" not in json.dumps(final)
    assert not any("s3cr3t-v4lue-77" in line for line in server.all_lines(final["execution_id"]))


def test_env_cannot_run_anything_during_the_clone(server, canary_dir):
    canary = canary_dir / "CANARY-env-git"
    proxy = canary_dir / "left-by-an-earlier-execution.sh"
    proxy.write_text(f"#!/bin/sh\ntouch {canary}\n")
    proxy.chmod(0o755)
    final = exec_or_400(server, {"command": "true", "repo": "git://127.0.0.1:9/x.git",
                                 "env": {"GIT_PROXY_COMMAND": str(proxy)}})
    assert final is None or final["exit_code"] == NOT_STARTED_EXIT_CODE
    assert_clean(canary)
