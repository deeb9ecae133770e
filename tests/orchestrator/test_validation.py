"""Every validation rule of the API: a bad value is a BadRequest (400) that names the field."""

from __future__ import annotations

import pytest

from orchestrator.errors import BadRequest
from orchestrator.validation import ExecRequest, ListRequest, LogsRequest, Ref, parse_request

EID = "67a1a8f4a3b5"


def exec_body(**fields) -> dict:
    return {"action": "exec", "command": "echo hi", "repo": "https://github.com/o/r.git", **fields}


def rejected(body: object) -> str:
    with pytest.raises(BadRequest) as info:
        parse_request(body)
    assert info.value.status == 400
    assert info.value.message.startswith("invalid request: ")
    return info.value.message


# (body, a word the message must contain)
BAD = {
    "not an object": ([1, 2], "JSON object"),
    "no action": ({"command": "x"}, "action"),
    "prune without days": ({"action": "prune"}, "older_than_days"),
    "prune negative days": ({"action": "prune", "older_than_days": -1}, "older_than_days"),
    "prune days as text": ({"action": "prune", "older_than_days": "7"}, "older_than_days"),
    "prune unknown field": ({"action": "prune", "older_than_days": 1, "all": True}, "all"),
    "unknown action": ({"action": "run"}, "action"),
    "action case": ({"action": "EXEC"}, "action"),
    "action not a string": ({"action": ["exec"]}, "action"),
    "unknown field": (exec_body(comand="typo"), "comand"),
    "no command": ({"action": "exec", "skip_git": True}, "command"),
    "empty command": (exec_body(command=""), "command"),
    "blank command": (exec_body(command=" \n\t"), "command"),
    "command not a string": (exec_body(command=["ls"]), "command"),
    "command too long": (exec_body(command="x" * (64 * 1024 + 1)), "command"),
    "NUL in command": (exec_body(command="echo a\x00b"), "command"),
    "lone surrogate": (exec_body(command="echo \ud800"), "command"),
    "no repo": ({"action": "exec", "command": "x"}, "repo"),
    "repo option": (exec_body(repo="--upload-pack=touch CANARY"), "repo"),
    "repo dash": (exec_body(repo="-u"), "repo"),
    "repo ext transport": (exec_body(repo="ext::sh -c touch CANARY"), "repo"),
    "repo fd transport": (exec_body(repo="fd::3"), "repo"),
    "repo ext no space": (exec_body(repo="ext::sh"), "repo"),
    "repo user:password": (exec_body(repo="https://user:secret@github.com/o/r.git"), "repo"),
    "repo token as user": (exec_body(repo="https://ghp_abcdef0123456789@github.com/o/r.git"), "repo"),
    "repo ssh password": (exec_body(repo="ssh://git:pw@host/r.git"), "repo"),
    "repo ssh option host": (exec_body(repo="ssh://-oProxyCommand=touch${IFS}CANARY/x"), "repo"),
    "repo ssh option host after user": (exec_body(repo="ssh://git@-oProxyCommand=x/r"), "repo"),
    "repo relative": (exec_body(repo="relative/path"), "repo"),
    "repo no scheme": (exec_body(repo="github.com/o/r"), "repo"),
    "repo ftp": (exec_body(repo="ftp://host/r"), "repo"),
    "repo space": (exec_body(repo="https://github.com/o r"), "repo"),
    "repo newline": (exec_body(repo="https://github.com/o/r\n"), "repo"),
    "repo not a string": (exec_body(repo=5), "repo"),
    "branch dash": (exec_body(branch="-b"), "branch"),
    "branch option": (exec_body(branch="--upload-pack=touch CANARY"), "branch"),
    "branch dots": (exec_body(branch="a..b"), "branch"),
    "branch space": (exec_body(branch="a b"), "branch"),
    "branch subst": (exec_body(branch="$(touch CANARY)"), "branch"),
    "branch lock": (exec_body(branch="x.lock"), "branch"),
    "branch slash end": (exec_body(branch="x/"), "branch"),
    "branch reflog": (exec_body(branch="x@{1}"), "branch"),
    "branch trailing newline": (exec_body(branch="main\n"), "branch"),
    "branch not a string": (exec_body(branch=1), "branch"),
    "env not object": (exec_body(env=["A=1"]), "env"),
    "env key digit": (exec_body(env={"1A": "x"}), "env"),
    "env key dash": (exec_body(env={"A-B": "x"}), "env"),
    "env key equals": (exec_body(env={"A=B": "x"}), "env"),
    "env key empty": (exec_body(env={"": "x"}), "env"),
    "env key trailing newline": (exec_body(env={"A\n": "x"}), "env"),
    "env key reserved": (exec_body(env={"MYCLI_GITHUB_TOKEN": "x"}), "env"),
    "env value number": (exec_body(env={"A": 1}), "env"),
    "env value null": (exec_body(env={"A": None}), "env"),
    "env value NUL": (exec_body(env={"A": "a\x00b"}), "A"),
    "env too many": (exec_body(env={f"K{i}": "v" for i in range(201)}), "env"),
    "timeout zero": (exec_body(timeout_seconds=0), "timeout_seconds"),
    "timeout negative": (exec_body(timeout_seconds=-5), "timeout_seconds"),
    "timeout too big": (exec_body(timeout_seconds=86401), "timeout_seconds"),
    "timeout float": (exec_body(timeout_seconds=1.5), "timeout_seconds"),
    "timeout string": (exec_body(timeout_seconds="60"), "timeout_seconds"),
    "timeout true": (exec_body(timeout_seconds=True), "timeout_seconds"),
    "timeout false": (exec_body(timeout_seconds=False), "timeout_seconds"),
    "skip_git string": (exec_body(skip_git="true"), "skip_git"),
    "skip_git int": (exec_body(skip_git=1), "skip_git"),
    "dry_run string": (exec_body(dry_run="yes"), "dry_run"),
    "status no id": ({"action": "status"}, "execution_id"),
    "stop no id": ({"action": "stop"}, "execution_id"),
    "logs no id": ({"action": "logs"}, "execution_id"),
    "id upper": ({"action": "status", "execution_id": EID.upper()}, "execution_id"),
    "id short": ({"action": "status", "execution_id": EID[:-1]}, "execution_id"),
    "id long": ({"action": "status", "execution_id": EID + "0"}, "execution_id"),
    "id trailing newline": ({"action": "status", "execution_id": EID + "\n"}, "execution_id"),
    "id number": ({"action": "stop", "execution_id": 67}, "execution_id"),
    "task_arn number": ({"action": "status", "task_arn": 5}, "task_arn"),
    "task_arn control": ({"action": "status", "task_arn": "arn:x\n"}, "task_arn"),
    "logs limit zero": ({"action": "logs", "execution_id": EID, "limit": 0}, "limit"),
    "logs limit big": ({"action": "logs", "execution_id": EID, "limit": 10001}, "limit"),
    "logs wait negative": ({"action": "logs", "execution_id": EID, "wait_seconds": -1}, "wait_seconds"),
    "logs wait big": ({"action": "logs", "execution_id": EID, "wait_seconds": 21}, "wait_seconds"),
    "logs wait bool": ({"action": "logs", "execution_id": EID, "wait_seconds": True}, "wait_seconds"),
    "logs wait nan": ({"action": "logs", "execution_id": EID, "wait_seconds": float("nan")}, "wait_seconds"),
    "logs token number": ({"action": "logs", "execution_id": EID, "next_token": 5}, "next_token"),
    "logs token huge": ({"action": "logs", "execution_id": EID, "next_token": "1" * 2000}, "next_token"),
    "list limit zero": ({"action": "list", "limit": 0}, "limit"),
    "list limit bool": ({"action": "list", "limit": True}, "limit"),
    "list limit big": ({"action": "list", "limit": 1001}, "limit"),
    "NUL in a key": ({"action": "list", "x\x00": 1}, "NUL"),
}

BAD_IMAGES = ["Python:3.11", "-rm", "--privileged", "ubuntu latest", "ubuntu:", ":tag", "ubuntu:-tag",
              "ubuntu@sha256:abc", "ubuntu;id", "$(touch CANARY)", "`id`", "ubuntu\n", "a" * 600, "/ubuntu",
              "ubuntu/", "UP/per/Case", "x:" + "t" * 129, 5, "LOCALHOST/x:1", "Owner/repo"]
GOOD_IMAGES = ["python:3.11", "ubuntu", "hashicorp/terraform:1.6", "ghcr.io/owner/repo:tag",
               "localhost:5000/x/y:1.0", "python:3.11-slim@sha256:" + "a" * 64, "my_org/my-img__x:v_1.2",
               "registry.example.com:443/a/b/c", "Registry.Example.com/a", "HOST:5000/a"]


@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_request_names_the_field(name):
    body, word = BAD[name]
    assert word in rejected(body)


@pytest.mark.parametrize("image", BAD_IMAGES, ids=range(len(BAD_IMAGES)))
def test_bad_image_reference(image):
    assert "image" in rejected(exec_body(image=image))


@pytest.mark.parametrize("image, rule", [
    ("LOCALHOST/x:1", "the repository path must be lowercase ('LOCALHOST' is not a registry host"),
    ("Python:3.11", "with a lowercase PATH"),
    ("ubuntu:", "[HOST[:PORT]/]PATH[:TAG][@DIGEST]"),
])
def test_a_refused_image_names_the_rule(image, rule):
    assert rule in rejected(exec_body(image=image))


@pytest.mark.parametrize("image", GOOD_IMAGES)
def test_good_image_reference(image):
    assert parse_request(exec_body(image=image))[1].image == image


@pytest.mark.parametrize("repo", [
    "https://github.com/o/r.git", "http://127.0.0.1:8080/r.git", "ssh://git@host:22/r.git",
    "git@github.com:o/r.git", "file:///srv/r.git", "/srv/repo", "git://host/r",
])
def test_good_repos(repo):
    assert parse_request(exec_body(repo=repo))[1].repo == repo


@pytest.mark.parametrize("branch", ["main", "feature/x-1", "v1.2.3", "release_2024", "user@dev", "a+b"])
def test_good_branches(branch):
    assert parse_request(exec_body(branch=branch))[1].branch == branch


def test_exec_defaults():
    action, request = parse_request({"action": "exec", "command": "ls", "repo": "/srv/r"})
    assert action == "exec"
    assert request == ExecRequest(command="ls", repo="/srv/r", branch="main", image=None, env={},
                                  timeout_seconds=1800, skip_git=False, dry_run=False)


def test_exec_all_fields_and_limits():
    body = exec_body(branch="dev", image="python:3.11", env={"A_1": "x y'\"$(z)", "_b": ""},
                     timeout_seconds=86400, skip_git=False, dry_run=True)
    request = parse_request(body)[1]
    assert (request.branch, request.env, request.timeout_seconds, request.dry_run) == (
        "dev", {"A_1": "x y'\"$(z)", "_b": ""}, 86400, True)
    assert parse_request(exec_body(timeout_seconds=1))[1].timeout_seconds == 1


def test_skip_git_needs_no_repo_and_empty_values_mean_default():
    request = parse_request({"action": "exec", "command": "ls", "skip_git": True, "repo": "", "branch": "",
                             "image": "", "env": None, "timeout_seconds": None})[1]
    assert (request.repo, request.branch, request.image, request.env, request.timeout_seconds) == (
        None, "main", None, {}, 1800)


def test_command_at_the_size_limit_is_accepted():
    assert parse_request(exec_body(command="x" * 64 * 1024))[1].command == "x" * 64 * 1024


def test_refs_and_pages():
    assert parse_request({"action": "status", "execution_id": EID}) == ("status", Ref(execution_id=EID))
    arn = "arn:aws:ecs:us-east-1:123456789012:task/c/abc"
    assert parse_request({"action": "stop", "task_arn": arn}) == ("stop", Ref(task_arn=arn))
    assert parse_request({"action": "logs", "execution_id": EID, "next_token": "12", "limit": 5,
                          "wait_seconds": 2.5}) == ("logs", LogsRequest(Ref(execution_id=EID), "12", 5, 2.5))
    assert parse_request({"action": "logs", "task_arn": arn})[1].limit == 10000
    assert parse_request({"action": "list"}) == ("list", ListRequest(20))
    assert parse_request({"action": "list", "limit": 1000}) == ("list", ListRequest(1000))
