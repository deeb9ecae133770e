"""The AWS run's container scripts (orchestrator/engines/ecs_scripts.py) under the real dash, bash
and busybox ash, and under shellcheck: each runs with a task volume bind-mounted at /mycli (a
private mount namespace, as a container sees its volume), against the moto server's S3 with the
task role's credentials from a container credentials endpoint, with curl's SigV4."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import tarfile
import time

import boto3
import pytest

from orchestrator.engines.ecs_files import parse_manifest
from orchestrator.engines.ecs_metadata import executor_state_lines
from orchestrator.engines.ecs_scripts import (EXECUTOR_DONE, RUN_SCRIPT, executor_script, fetch_script, publish_script,
                                             upload_key)
from orchestrator.shell import GitHosts
from orchestrator.validation import parse_request
from tests.support.aws import aws_env
from tests.support.fargate_creds import CredentialsEndpoint
from tests.support.fargate_metadata import MetadataEndpoint, container_entry

pytestmark = pytest.mark.aws

REGION = "eu-north-1"
SHELLS = {"dash": ["dash"], "bash": ["bash"], "busybox": ["busybox", "sh"]}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    if subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True).returncode != 0:
        pytest.fail("these tests need mount namespaces (root, as CI runs them)")
    os.makedirs("/mycli", exist_ok=True)
    env = aws_env(REGION)
    client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=REGION,
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = "mycli-scripts-test-bucket"
    client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    credentials = CredentialsEndpoint()
    yield client, bucket, env, credentials
    credentials.close()


@pytest.fixture(params=sorted(SHELLS))
def shell(request):
    if not shutil.which(SHELLS[request.param][0]):
        pytest.fail(f"{request.param} is not installed")
    return SHELLS[request.param]


_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_script_outlives_its_test():
    """Publish waits for ever by design: a test that fails before `_end` must not leave it looping."""
    yield
    while _started:
        _kill_group(_started.pop())


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _start(shell, script: str, volume, env: dict) -> subprocess.Popen:
    """The script as a container's main process (its pid: unshare and sh exec into it)."""
    volume.mkdir(parents=True, exist_ok=True)
    path = volume.parent / f"{volume.name}.sh"
    path.write_text(script)
    mount = shutil.which("mount")
    argv = [shutil.which("unshare"), "-m", "--propagation", "private", "/bin/sh", "-c", f'{mount} --bind "$0" /mycli && exec "$@"',
            str(volume), shutil.which(shell[0]), *shell[1:], str(path)]
    out, err = volume.parent / f"{volume.name}.out", volume.parent / f"{volume.name}.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        _started.append(subprocess.Popen(argv, env=env, stdout=stdout, stderr=stderr, start_new_session=True))
    return _started[-1]


def _end(proc: subprocess.Popen, volume, timeout: float = 60) -> subprocess.CompletedProcess:
    try:
        proc.wait(timeout)
    finally:  # the container ends with its main process: what it left running goes too
        _kill_group(proc)
    out, err = volume.parent / f"{volume.name}.out", volume.parent / f"{volume.name}.err"
    return subprocess.CompletedProcess(proc.args, proc.returncode, out.read_text(), err.read_text())


def _run(shell, script: str, volume, env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    return _end(_start(shell, script, volume, env), volume, timeout)


def _executor_done(volume) -> None:
    """What the executor's EXIT trap leaves for publish."""
    mark = volume / EXECUTOR_DONE.removeprefix("/mycli/")
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()


def _task_env(s3, execution_id: str = "6b10aaaaaaaa") -> dict:
    client, bucket, env, credentials = s3
    return {"PATH": "/usr/bin:/bin", "MYCLI_EXECUTION_ID": execution_id, "MYCLI_S3_URL": f"{env['AWS_ENDPOINT_URL']}/{bucket}",
            "MYCLI_S3_REGION": REGION, **credentials.env_for("arn:aws:iam::123456789012:role/task")}


def test_publish_uploads_regular_files_and_says_what_it_left_out(s3, shell, tmp_path):
    client, bucket, _, credentials = s3
    outputs = tmp_path / "vol" / "outputs"
    (outputs / "sub").mkdir(parents=True)
    blob = os.urandom(2500)
    (outputs / "sub" / "b.bin").write_bytes(blob)
    (outputs / "a b.txt").write_text("ä\n")
    (outputs / ".hidden").write_text("h\n")
    (outputs / "big.bin").write_bytes(b"x" * 1_100_000)
    (outputs / "link").symlink_to("/etc/passwd")
    (outputs / "dirlink").symlink_to("/etc")
    os.mkfifo(outputs / "pipe")
    (outputs / "new\nline").write_text("n")
    (outputs / "back\\slash").write_text("b")
    execution_id = f"6b10{shell[0][:4]:0<8}"[:12]
    _executor_done(tmp_path / "vol")
    done = _run(shell, publish_script(), tmp_path / "vol", {**_task_env(s3, execution_id), "MYCLI_MAX_ARTIFACT_MB": "1"})
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = client.get_object(Bucket=bucket, Key=f"artifacts/{execution_id}/manifest")["Body"].read().decode()
    artifacts, skipped = parse_manifest(manifest)
    assert {a["name"]: a["size"] for a in artifacts} == {"sub/b.bin": 2500, "a b.txt": 3, ".hidden": 2}
    for artifact in artifacts:
        body = client.get_object(Bucket=bucket, Key=f"artifacts/{execution_id}/files/{artifact['key']}")["Body"].read()
        assert hashlib.sha256(body).hexdigest() == artifact["sha256"]
        assert body == (outputs / artifact["name"]).read_bytes()
    text = "\n".join(skipped)
    for expected in ("link: symbolic link", "dirlink: symbolic link", "pipe: not a regular file",
                     "big.bin: 1100000 bytes, over the per-file cap of 1 MiB", "not a usable name (control characters or a backslash)"):
        assert expected in text, (expected, text)
        assert any(expected in line for line in done.stdout.splitlines() if line.startswith("→ Skipped ")), done.stdout
    assert len(skipped) == 6
    assert done.stdout.rstrip().endswith("→ Artifacts: 3 files, 2.4 KiB")
    assert "testing" not in done.stdout + done.stderr  # the keys went to curl on stdin, never printed
    assert credentials.asked  # the keys came from the endpoint


def test_publish_keeps_to_the_per_run_cap_and_survives_no_outputs(s3, shell, tmp_path):
    client, bucket, _, _ = s3
    outputs = tmp_path / "vol" / "outputs"
    outputs.mkdir(parents=True)
    for name in ("1", "2", "3"):
        (outputs / name).write_bytes(b"y" * 400_000)
    caps = {"MYCLI_MAX_ARTIFACT_MB": "0", "MYCLI_MAX_ARTIFACTS_MB": "1"}  # 0: no per-file cap
    _executor_done(tmp_path / "vol")
    done = _run(shell, publish_script(), tmp_path / "vol", {**_task_env(s3, "6b10cccccccc"), **caps})
    assert done.returncode == 0, done.stderr
    artifacts, skipped = parse_manifest(client.get_object(Bucket=bucket, Key="artifacts/6b10cccccccc/manifest")["Body"].read().decode())
    assert [a["name"] for a in artifacts] == ["1", "2"] and skipped == ["3: 400000 bytes would exceed the per-run cap of 1 MiB"]
    shutil.rmtree(outputs)
    done = _run(shell, publish_script(), tmp_path / "vol", _task_env(s3, "6b10dddddddd"))
    assert done.returncode == 0 and "the outputs directory is missing" in done.stdout
    assert "→ Artifacts: 0 files, 0 bytes" in done.stdout


def _wait_for(path, proc: subprocess.Popen, mode: int | None = None) -> None:
    """Until `path` exists (with `mode`, when given) while the script still runs."""
    deadline = time.monotonic() + 60
    while not os.path.exists(path) or (mode is not None and os.stat(path).st_mode & 0o7777 != mode):
        assert proc.poll() is None, f"the script ended before {path} appeared"
        assert time.monotonic() < deadline, f"{path} never appeared" + (f" with mode {mode:o}" if mode else "")
        time.sleep(0.05)


def test_publish_waits_for_the_executors_end_or_a_stop(s3, shell, tmp_path):
    """Publish starts with the task: it uploads once the executor's EXIT trap leaves its mark, or
    on its own SIGTERM (ECS sends it only once the executor has stopped) — then it says so and
    still uploads; a SIGTERM during the walk is noted, never fatal. Past the stop budget it
    starts no upload but still writes the manifest, before its stop timeout's SIGKILL."""
    client, bucket, _, _ = s3
    volume = tmp_path / "vol"
    (volume / "outputs").mkdir(parents=True)
    (volume / "outputs" / "early.txt").write_text("written before the stop\n")
    done_dir = volume / EXECUTOR_DONE.removeprefix("/mycli/").rsplit("/", 1)[0]
    key = "artifacts/{}/manifest"
    ids = [f"6b1{n}{shell[0][:4]:0<8}"[:12] for n in (5, 6, 7)]  # one set per shell: the bucket is the module's

    proc = _start(shell, publish_script(), volume, _task_env(s3, ids[0]))
    _wait_for(done_dir, proc, mode=0o1777)  # made at once, for any user (the executor's image may not be root's)
    assert proc.poll() is None and client.list_objects_v2(Bucket=bucket, Prefix=f"artifacts/{ids[0]}/")["KeyCount"] == 0
    _executor_done(volume)
    done = _end(proc, volume)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "→ Stopped" not in done.stdout and done.stdout.rstrip().endswith("→ Artifacts: 1 file, 24 bytes")
    (volume / EXECUTOR_DONE.removeprefix("/mycli/")).unlink()

    proc = _start(shell, publish_script(), volume, _task_env(s3, ids[1]))
    _wait_for(done_dir, proc, mode=0o1777)
    time.sleep(0.2)  # past the mkdir: the trap is set before it
    os.kill(proc.pid, signal.SIGTERM)
    done = _end(proc, volume)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "→ Stopped: publishing what the command wrote before it stopped" in done.stdout
    artifacts, skipped = parse_manifest(client.get_object(Bucket=bucket, Key=key.format(ids[1]))["Body"].read().decode())
    assert [(a["name"], a["sha256"]) for a in artifacts] == [
        ("early.txt", hashlib.sha256(b"written before the stop\n").hexdigest())] and skipped == []

    proc = _start(shell, publish_script(), volume, {**_task_env(s3, ids[2]), "MYCLI_PUBLISH_STOP_BUDGET": "0"})
    _wait_for(done_dir, proc, mode=0o1777)
    time.sleep(0.2)
    os.kill(proc.pid, signal.SIGTERM)
    done = _end(proc, volume)
    assert done.returncode == 0, done.stdout + done.stderr
    artifacts, skipped = parse_manifest(client.get_object(Bucket=bucket, Key=key.format(ids[2]))["Body"].read().decode())
    assert artifacts == [] and skipped == ["early.txt: not uploaded, the stop left no time"]


def _task_document(executor: str, exit_code: int | None) -> dict:
    """The metadata endpoint's answer, with words that could mislead a careless reader: the
    task's own KnownStatus, a label naming the executor on another container, an image name
    with quotes and braces."""
    fetch = container_entry("t1", "fetch", "alpine:3", "STOPPED", "STOPPED", 0)
    fetch["Labels"]["com.example.watch"] = 'executor "STOPPED" {"ExitCode": 1}'
    entry = container_entry("t1", "executor", 'img:"x" {y}', executor, "RUNNING", exit_code)
    return {"Cluster": "c", "TaskARN": "t1", "KnownStatus": "STOPPED", "DesiredStatus": "RUNNING",
            "Containers": [fetch, entry, container_entry("t1", "publish", "alpine:3", "RUNNING", "RUNNING", None)]}


@pytest.fixture
def metadata():
    endpoint = MetadataEndpoint()
    yield endpoint
    endpoint.close()


@pytest.mark.parametrize("awk", ["awk", "busybox"])
def test_the_executors_state_is_read_from_the_task_metadata(metadata, shell, awk, tmp_path):
    """`mycli_executor_state` prints the executor's KnownStatus and ExitCode from ECS's task
    metadata (the helper image is alpine: busybox's awk as well as the system's)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if awk == "busybox":
        (bin_dir / "awk").symlink_to(shutil.which("busybox"))
    state = {"doc": _task_document("RUNNING", None)}
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **metadata.env_for(lambda: state["doc"], "publish")}
    script = "\n".join(executor_state_lines()) + '\nmycli_executor_state; echo "rc=$?"\n'

    def read() -> str:
        done = subprocess.run([*shell, "-c", script], env=env, capture_output=True, text=True, timeout=30)
        return done.stdout + done.stderr

    assert read() == "RUNNING\nrc=0\n"
    state["doc"] = _task_document("STOPPED", 137)
    assert read() == "STOPPED 137\nrc=0\n"
    state["doc"] = _task_document("STOPPED", None)  # never ran: no ExitCode
    assert read() == "STOPPED\nrc=0\n"
    state["doc"] = {"Containers": []}
    assert read() == "rc=1\n"
    del env["ECS_CONTAINER_METADATA_URI_V4"]  # no endpoint (not on ECS): no answer, no wait on it
    assert read() == "rc=1\n"


def test_publish_ends_when_ecs_says_the_executor_stopped_without_its_mark(s3, metadata, shell, tmp_path):
    """The executor's shell SIGKILLed (the memory limit), its container killed, or never started:
    no EXIT-trap mark. Publish also asks ECS's task metadata every few seconds and, once the
    executor is STOPPED, says so and uploads what is there instead of waiting forever."""
    client, bucket, _, _ = s3
    volume = tmp_path / "vol"
    (volume / "outputs").mkdir(parents=True)
    (volume / "outputs" / "before.txt").write_text("written before the kill\n")
    ids = [f"6b2{n}{shell[0][:4]:0<8}"[:12] for n in (1, 2)]
    state = {"doc": _task_document("RUNNING", None)}
    env = {**_task_env(s3, ids[0]), "MYCLI_PUBLISH_WATCH_SECONDS": "1", **metadata.env_for(lambda: state["doc"], "publish")}

    proc = _start(shell, publish_script(), volume, env)
    deadline = time.monotonic() + 30
    while metadata.asked.count("publish") < 2:  # it asked, was told RUNNING, and keeps waiting
        assert proc.poll() is None and time.monotonic() < deadline, "publish never asked the task metadata"
        time.sleep(0.05)
    state["doc"] = _task_document("STOPPED", 137)
    done = _end(proc, volume)
    assert done.returncode == 0, done.stdout + done.stderr
    assert ("✗ The command's container ended before its script did (exit code 137; 137 is a SIGKILL, often the memory "
            "limit): publishing what the command wrote") in done.stdout
    artifacts, skipped = parse_manifest(client.get_object(Bucket=bucket, Key=f"artifacts/{ids[0]}/manifest")["Body"].read().decode())
    assert [a["name"] for a in artifacts] == ["before.txt"] and skipped == []

    state["doc"] = _task_document("STOPPED", None)  # the executor never ran
    done = _run(shell, publish_script(), volume, {**env, "MYCLI_EXECUTION_ID": ids[1]})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✗ The command's container stopped without running" in done.stdout
    assert done.stdout.rstrip().endswith("→ Artifacts: 1 file, 24 bytes")


def test_the_executor_hands_a_stop_to_the_command_and_marks_its_end(shell, tmp_path):
    """ECS's SIGTERM reaches the executor's script only (its init hands it to its child): the
    script passes it to the command, which may save its work; the script reports, exits 143
    and leaves the mark publish waits for."""
    volume = tmp_path / "vol"
    for name in ("work", "inputs", "outputs", ".mycli/done"):
        (volume / name).mkdir(parents=True)
    command = ('trap \'echo saved > "$MYCLI_OUTPUTS/saved"; exit 5\' TERM; echo up > "$MYCLI_OUTPUTS/up"; '
               'while :; do sleep 1; done')
    proc = _start(shell, executor_script(_request(command=command, skip_git=True)), volume, {"PATH": "/usr/bin:/bin"})
    _wait_for(volume / "outputs" / "up", proc)
    assert not (volume / EXECUTOR_DONE.removeprefix("/mycli/")).exists()
    os.kill(proc.pid, signal.SIGTERM)
    done = _end(proc, volume)
    assert done.returncode == 143, done.stdout + done.stderr
    assert (volume / "outputs" / "saved").read_text() == "saved\n" and "✗ Stopped" in done.stdout
    assert (volume / EXECUTOR_DONE.removeprefix("/mycli/")).exists()


def _request(**fields):
    return parse_request({"action": "exec", **fields})[1]


def test_fetch_downloads_the_inputs_and_leaves_the_executors_script(s3, shell, tmp_path):
    client, bucket, _, _ = s3
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        for name, data, mode in (("in/data.bin", os.urandom(1000), 0o600), ("tool.sh", b"#!/bin/sh\necho t\n", 0o700)):
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    upload_id = "up-" + "1" * 32
    client.put_object(Bucket=bucket, Key=upload_key("inputs", upload_id), Body=archive.getvalue())
    request = _request(command="echo hi", skip_git=True, inputs=upload_id)
    volume = tmp_path / "vol"
    volume.mkdir()
    done = _run(shell, fetch_script(request, executor_script(request), GitHosts()), volume, _task_env(s3))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "✓ Inputs in $MYCLI_INPUTS (/mycli/inputs)" in done.stdout
    with tarfile.open(fileobj=io.BytesIO(archive.getvalue())) as tar:
        for member in tar.getmembers():
            path = volume / "inputs" / member.name
            readable = {0o600: 0o644, 0o700: 0o755}[member.mode]  # by the user the image runs as, whoever
            assert path.read_bytes() == tar.extractfile(member).read() and (path.stat().st_mode & 0o777) == readable
    assert (volume / RUN_SCRIPT[len("/mycli/"):]).read_text() == executor_script(request)


def test_fetch_without_the_upload_leaves_no_command(s3, shell, tmp_path):
    request = _request(command="echo hi", skip_git=True, inputs="up-" + "2" * 32)
    volume = tmp_path / "vol"
    volume.mkdir()
    done = _run(shell, fetch_script(request, executor_script(request), GitHosts()), volume, _task_env(s3))
    assert done.returncode == 200 and "the inputs could not be downloaded" in done.stderr
    assert not (volume / RUN_SCRIPT[len("/mycli/"):]).exists()


@pytest.fixture
def busybox_only(tmp_path):
    """A PATH of busybox applets and nothing else: no curl, git, python, base64 or gunzip."""
    folder = tmp_path / "bb"
    folder.mkdir()
    for applet in ("sleep", "mktemp", "rm", "mkdir", "cat"):
        os.symlink("/usr/bin/busybox", folder / applet)
    return str(folder)


def test_the_executor_needs_only_a_shell(shell, busybox_only, tmp_path):
    volume = tmp_path / "vol"
    for name in ("work", "inputs", "outputs"):
        (volume / name).mkdir(parents=True)
    request = _request(command='echo "in=$MYCLI_INPUTS out=$MYCLI_OUTPUTS at=$(pwd)"; echo made > "$MYCLI_OUTPUTS/f"; exit 3',
                       skip_git=True, env={"GREETING": "it's"})
    done = _run(shell, executor_script(request), volume, {"PATH": busybox_only})
    assert done.returncode == 3, done.stdout + done.stderr
    assert "in=/mycli/inputs out=/mycli/outputs at=/mycli/work" in done.stdout
    assert "✗ Command failed with exit code: 3" in done.stdout and (volume / "outputs" / "f").read_text() == "made\n"
    timed = _run(shell, executor_script(_request(command="sleep 30", skip_git=True, timeout_seconds=1)), volume,
                 {"PATH": busybox_only})
    assert timed.returncode == 124 and "✗ Timed out after 1 s" in timed.stdout


@pytest.mark.parametrize("fields", [
    {"skip_git": True},
    {"skip_git": True, "inputs": "up-" + "3" * 32, "env": {"A": "it's"}},
    {"repo": "https://github.com/o/r.git", "local_changes": "up-" + "4" * 32, "inputs": "up-" + "5" * 32},
    {"repo": "git@github.com:o/r.git", "timeout_seconds": 60},
], ids=["direct", "inputs", "local-changes", "ssh"])
def test_the_scripts_are_clean_under_shellcheck(fields):
    request = _request(command="make", **fields)
    executor = executor_script(request)
    for script in (fetch_script(request, executor, GitHosts()), executor, publish_script()):
        result = subprocess.run(["shellcheck", "-s", "sh", "-"], input=script, capture_output=True, text=True)
        assert result.returncode == 0, result.stdout + result.stderr
