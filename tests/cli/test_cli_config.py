"""Configuration as `mycli` users meet it: flags > .mycli.yaml > git auto-detect > an error, in a
real git repo with a real origin; the global config file; bad input; unreachable endpoints;
start-up imports. The real executable, a real embedded engine (stopped in teardown).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys

import pytest
import yaml

from tests.support.cli import Cli, make_repo_with_origin


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("cfg-home"))
    yield cli
    cli.stop_engine()


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """(origin, work): work is a clone on branch `feature`; origin has main and feature.

    A .mycli.yaml sits ABOVE the clone, outside its git root, and would fail if it were read.
    """
    base = tmp_path_factory.mktemp("project")
    (base / ".mycli.yaml").write_text("not_a_key: true\n")
    return make_repo_with_origin(base)


def _ran(proc) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_git_auto_detect_uses_origin_and_the_current_branch(cli, repo):
    origin, work = repo
    (work / ".mycli.yaml").unlink(missing_ok=True)
    proc = cli.run("exec", "--wait", "cat which.txt", cwd=work / "sub")
    assert "feature" in _ran(proc)
    assert f"→ Auto-detected repository from git remote 'origin' in {work}" in proc.stderr
    assert f"→ Repository: {origin}" in proc.stderr and "→ Branch: feature" in proc.stderr


def test_project_file_overrides_git_and_flags_override_the_file(cli, repo):
    origin, work = repo
    (work / ".mycli.yaml").write_text(
        "repo: ../origin.git\n"  # relative to the file, sent as an absolute path
        "branch: main\n"
        "env:\n  GREETING: from-yaml\n  OTHER: kept\n"
        "timeout: 120\n"
    )
    try:
        from_file = cli.run("exec", "-w", "--env", "GREETING=from-flag", 'cat which.txt; echo "$GREETING/$OTHER"',
                            cwd=work / "sub")
        assert "main" in _ran(from_file) and "from-flag/kept" in _ran(from_file)
        assert "→ Loaded configuration from ../.mycli.yaml" in from_file.stderr
        assert f"→ Repository: {origin}" in from_file.stderr and "Auto-detected" not in from_file.stderr
        assert "→ Timeout: 120 s" in from_file.stderr

        flagged = cli.run("exec", "-w", "--repo", "../../origin.git", "--branch", "feature", "cat which.txt",
                          cwd=work / "sub")
        assert "feature" in _ran(flagged)
        assert f"→ Repository: {origin}" in flagged.stderr
    finally:
        (work / ".mycli.yaml").unlink()


def test_no_repository_anywhere_names_the_three_fixes_and_starts_nothing(tmp_path):
    cli = Cli(tmp_path / "home")
    plain = tmp_path / "plain"
    plain.mkdir()
    proc = cli.run("exec", "make test", cwd=plain)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    for fix in ("--repo", ".mycli.yaml", "--skip-git"):
        assert fix in proc.stderr
    assert cli.engine_info() is None  # no engine was started for a request that could not be made


@pytest.mark.parametrize(
    "content, expected",
    [
        ("repo: https://example.com/x.git\nbranches: dev\n", "unknown key 'branches'"),
        ("timeout: soon\n", "key 'timeout'"),
        ("env:\n  DEBUG: true\n", "env key 'DEBUG'"),
        ("image: [a, b]\n", "key 'image'"),
        ("repo: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_project_file_is_one_line_naming_file_and_key(tmp_path, content, expected):
    cli = Cli(tmp_path / "home")
    project = tmp_path / "project"
    project.mkdir()
    (project / ".mycli.yaml").write_text(content)
    proc = cli.run("exec", "--skip-git", "echo hi", cwd=project)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert str(project / ".mycli.yaml") in proc.stderr and expected in proc.stderr
    assert cli.engine_info() is None


def test_configure_saves_a_0600_file_that_later_commands_use(cli, tmp_path):
    assert cli.run("list").returncode == 0  # make sure the shared engine is up
    local = cli.local_profile()
    user = Cli(tmp_path / "user-home")
    proc = user.run("configure", "--endpoint", local["api_endpoint"], "--api-key", "-", input=local["api_key"] + "\n")
    assert proc.returncode == 0, proc.stderr
    path = user.home / "config.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = yaml.safe_load(path.read_text())
    assert saved["api_endpoint"] == local["api_endpoint"] and saved["api_key"] == local["api_key"]
    assert local["api_key"] not in proc.stdout + proc.stderr  # shown masked only

    listed = user.run("list")
    assert listed.returncode == 0, listed.stderr
    assert "Started the embedded local engine" not in listed.stderr
    assert not (user.home / "engine").exists()  # it used the configured endpoint

    wrong = user.run("configure", "--profile", "other", "--endpoint", local["api_endpoint"], "--api-key", "sk_wrong")
    assert wrong.returncode == 1 and "rejected the API key" in wrong.stderr
    assert "other" not in (yaml.safe_load(path.read_text()).get("profiles") or {})  # nothing saved

    answers = f"{local['api_endpoint'].removesuffix('/execute')}\n{local['api_key']}\nus-east-1\n"
    asked = user.run("configure", "--profile", "team", input=answers)
    assert asked.returncode == 0, asked.stderr
    assert "API endpoint" in asked.stderr and "API key" in asked.stderr
    team = yaml.safe_load(path.read_text())["profiles"]["team"]
    assert team == {"api_endpoint": local["api_endpoint"], "api_key": local["api_key"], "region": "us-east-1"}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert user.run("list", "--profile", "team").returncode == 0
    missing = user.run("list", "--profile", "nope")
    assert missing.returncode == 2 and "mycli configure --profile nope" in missing.stderr


def test_configure_refuses_the_embedded_engines_profile_and_bad_urls(tmp_path):
    cli = Cli(tmp_path / "home")
    local = cli.run("configure", "--profile", "local", "--endpoint", "http://x/execute", "--api-key", "k", "--no-verify")
    assert local.returncode == 2 and "embedded engine" in local.stderr
    bad = cli.run("configure", "--endpoint", "ftp://x", "--api-key", "k", "--no-verify")
    assert bad.returncode == 2 and "http://" in bad.stderr
    no_answers = cli.run("configure")
    assert no_answers.returncode == 2 and "--endpoint" in no_answers.stderr
    assert not (cli.home / "config.yaml").exists()


@pytest.mark.parametrize("url, words", [
    ("http://exa mple.com", "has a space or control character in it"),
    ("https://host\tname/prod", "has a space or control character in it"),
    ("http://x:99999", "has a bad port: it must be a number from 1 to 65535"),
    ("http://x:abc/execute", "has a bad port"),
    ("http://x:0", "has a bad port"),
    ("http://:8080/execute", "has no valid host name"),
    ("http://ex!ample.com", "has no valid host name"),
])
def test_configure_refuses_an_endpoint_that_can_never_be_reached(tmp_path, url, words):
    cli = Cli(tmp_path / "home")
    bad = cli.run("configure", "--endpoint", url, "--api-key", "k", "--no-verify")
    assert bad.returncode == 2, bad.stdout
    assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("mycli: error: endpoint ") and words in bad.stderr, bad.stderr
    assert not (cli.home / "config.yaml").exists()
    fine = cli.run("configure", "--endpoint", "http://[::1]:8080", "--api-key", "k", "--no-verify")
    assert fine.returncode == 0, fine.stderr


def test_unreachable_endpoint_is_one_line_and_exit_1(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cli = Cli(tmp_path / "home", {"MYCLI_API_ENDPOINT": f"http://127.0.0.1:{port}/execute", "MYCLI_API_KEY": "k"})
    proc = cli.run("exec", "--skip-git", "echo hi", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert f"cannot reach http://127.0.0.1:{port}/execute" in proc.stderr
    assert cli.engine_info() is None


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_fast_start_imports_nothing_heavy(flag):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mycli_magic.cli", flag],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "mycli_magic.errors" in imported  # the measurement saw our own imports
    heavy = {m for m in imported if m.split(".")[0] in ("boto3", "botocore", "yaml", "IPython", "ipywidgets", "tarfile", "hashlib")}
    heavy |= imported & {"urllib.request", "http.client", "json", "mycli_magic.client", "mycli_magic.uploads",
                         "mycli_magic.downloads", "mycli_magic.transfer", "mycli_magic.local_changes"}
    assert not heavy


def test_a_run_without_files_imports_no_packing(tmp_path):
    """Packing and git capture (tarfile, hashlib, transfer, local_changes) load only for a run
    that carries files; a plain exec checks its settings and fails at the unreachable endpoint."""
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "MYCLI_HOME": str(tmp_path / "home"), "MYCLI_API_ENDPOINT": f"http://127.0.0.1:{port}/execute",
           "MYCLI_API_KEY": "k"}
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mycli_magic.cli", "exec", "--skip-git", "true"],
                          capture_output=True, text=True, timeout=60, env=env, cwd=tmp_path)
    assert proc.returncode == 1 and f"cannot reach http://127.0.0.1:{port}/execute" in proc.stderr
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "mycli_magic.uploads" in imported  # the measurement saw the files step
    assert not imported & {"tarfile", "mycli_magic.transfer", "mycli_magic.local_changes", "orchestrator.artifacts"}


@pytest.mark.aws
def test_configure_discovers_the_endpoint_from_a_stack(tmp_path):
    """--stack-name reads ApiEndpoint from a real (moto) CloudFormation stack, then asks for the key."""
    import json

    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        aws = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
               "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"}
        endpoint = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod/execute"
        template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
                    "Outputs": {"ApiEndpoint": {"Value": endpoint}}}
        boto3.client("cloudformation", region_name="eu-west-1", endpoint_url=aws["AWS_ENDPOINT_URL"],
                     aws_access_key_id="testing", aws_secret_access_key="testing").create_stack(
            StackName="mycli-test", TemplateBody=json.dumps(template))
        cli = Cli(tmp_path / "home", aws)
        proc = cli.run("configure", "--stack-name", "mycli-test", "--region", "eu-west-1", "--no-verify",
                       input="sk_live_" + "a" * 64 + "\n")
        assert proc.returncode == 0, proc.stderr
        assert "API key" in proc.stderr  # the key is never a stack output: it was asked for
        saved = yaml.safe_load((cli.home / "config.yaml").read_text())
        assert saved["api_endpoint"] == endpoint and saved["region"] == "eu-west-1"
        assert saved["stack_name"] == "mycli-test" and saved["api_key"] == "sk_live_" + "a" * 64
        missing = cli.run("configure", "--stack-name", "nope", "--region", "eu-west-1", "--no-verify")
        assert missing.returncode != 0 and "nope" in missing.stderr and missing.stderr.count("\n") == 1
    finally:
        server.stop()


def test_a_misspelt_key_in_the_global_config_is_named_not_ignored(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.yaml").write_text("api_endpiont: https://example.invalid/execute\n")
    proc = Cli(home).run("list")
    assert proc.returncode == 2
    assert "unknown key 'api_endpiont'" in proc.stderr and "config.yaml" in proc.stderr
    assert not (home / "engine").exists(), "nothing may start on a config error"


def test_a_relative_mycli_home_is_refused_in_one_line(tmp_path):
    """A relative MYCLI_HOME would be a different home (and engine) in each directory."""
    cli = Cli(tmp_path / "unused", {"MYCLI_HOME": "rel-home"})
    for args in (["list"], ["exec", "--skip-git", "true"], ["configure", "--endpoint", "http://x", "--api-key", "k", "--no-verify"]):
        proc = cli.run(*args, cwd=tmp_path)
        assert proc.returncode == 2, proc.stdout
        assert proc.stderr.strip() == ("mycli: error: MYCLI_HOME must be an absolute path, not 'rel-home' (a relative one is a "
                                       "different home in each directory); e.g. export MYCLI_HOME=\"$PWD/rel-home\"")
    assert not (tmp_path / "rel-home").exists(), "nothing was created or started"


def test_a_bad_number_reads_the_same_in_the_cli_and_the_magic(tmp_path):
    """One argparse type (mycli_magic.arg_types) for both fronts: the same words for the same mistake."""
    from IPython.core.error import UsageError

    from tests.support.ipython import new_shell

    cli = Cli(tmp_path / "home")
    proc = cli.run("exec", "--skip-git", "--timeout", "abc", "true", cwd=tmp_path)
    assert proc.returncode == 2
    cli_words = proc.stderr.strip().removeprefix("mycli: error: ").split(" (see:")[0]
    shell = new_shell(tmp_path / "ipython")
    try:
        shell.run_line_magic("load_ext", "mycli_magic")
        with pytest.raises(UsageError) as info:
            shell.run_cell("%%mycli --skip-git --timeout abc\necho")
    finally:
        shell.cleanup()
    assert cli_words == "argument --timeout: 'abc' is not a whole number of seconds"
    assert str(info.value).startswith(f"%%mycli: {cli_words}"), str(info.value)
