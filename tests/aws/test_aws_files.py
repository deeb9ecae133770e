"""Files in, results out on the AWS engine, end to end: `mycli init` deploys the stack (bucket
included) into the moto server, `mycli server --engine aws` runs the Lambda's code path, the
Fargate simulator runs each task's fetch, executor and publish containers on one volume, and the
helper containers reach S3 (moto) with SigV4 and the task role's credentials from the container
credentials endpoint. Uploads go through the presigned PUT the engine answers; artifacts come
back through its presigned GETs. Nothing of mycli's is patched."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
import urllib.request
from types import SimpleNamespace

import boto3
import pytest

from mycli_magic.local_changes import capture
from mycli_magic.transfer import pack_uploads
from tests.orchestrator.test_local_changes import git, make_work_in_progress, snapshot
from tests.support.aws import in_region
from tests.support.aws_engine import deployed_engine
from tests.support.cli import Cli
from tests.support.git_http_server import GitHttpServer
from tests.support.git_repos import two_commit_origin
from tests.support.server import run_to_the_end

pytestmark = pytest.mark.aws

REGION = "eu-west-3"
STACK = "filestest"
TOKEN = "ghp_files-test-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def aws(tmp_path_factory):
    with in_region(REGION):
        base = tmp_path_factory.mktemp("aws-files")
        origin = two_commit_origin(base)
        repo = GitHttpServer(base, "x-access-token", TOKEN)
        with deployed_engine(base, STACK, REGION, repo.host, TOKEN, MYCLI_TIMEOUT_GRACE_SECONDS="30",
                             MYCLI_MAX_ARTIFACT_MB="1") as engine:
            outputs = {o["OutputKey"]: o["OutputValue"]
                       for o in boto3.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]}
            yield SimpleNamespace(server=engine.server, sim=engine.sim, repo=repo, origin=origin, deployer=engine.deployer,
                                  home=engine.home, env=engine.env, ecs=boto3.client("ecs"), s3=boto3.client("s3"),
                                  bucket=outputs["ArtifactsBucketName"])
        repo.close()


def _call(aws, payload: dict) -> dict:
    status, body = aws.server.call(payload)
    assert status == 200, body
    return body


def _upload(aws, data: bytes, purpose: str = "inputs") -> str:
    answer = _call(aws, {"action": "upload", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "purpose": purpose})
    assert answer["method"] == "PUT" and answer["expires_at"] > time.time() + 600
    request = urllib.request.Request(answer["url"], data=data, method="PUT", headers=answer["headers"])
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    return answer["upload_id"]


def _artifacts(aws, execution_id: str) -> dict:
    answer = _call(aws, {"action": "artifacts", "execution_id": execution_id})
    assert answer["execution_id"] == execution_id and answer["complete"] is True, answer
    return answer


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.read()


def test_inputs_arrive_byte_for_byte_and_outputs_come_back(aws, tmp_path):
    (tmp_path / "data").mkdir()
    payload = os.urandom(300_000)
    (tmp_path / "data" / "blob.bin").write_bytes(payload)
    (tmp_path / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    (tmp_path / "tool.sh").chmod(0o755)
    packed = pack_uploads([tmp_path / "data", tmp_path / "tool.sh"], tmp_path)
    upload_id = _upload(aws, packed.path.read_bytes())
    command = ('cd "$MYCLI_INPUTS" && ./tool.sh && cp data/blob.bin "$MYCLI_OUTPUTS/copy.bin" && '
               'mkdir -p "$MYCLI_OUTPUTS/sub dir" && printf "ünï\\n" > "$MYCLI_OUTPUTS/sub dir/nämé.txt" && '
               'echo hidden > "$MYCLI_OUTPUTS/.hidden" && pwd')
    final, lines = run_to_the_end(aws.server, {"command": command, "skip_git": True, "inputs": upload_id})
    assert final["exit_code"] == 0, lines
    assert "tool ran" in lines and "/mycli/inputs" in lines
    answer = _artifacts(aws, final["execution_id"])
    by_name = {a["name"]: a for a in answer["artifacts"]}
    assert set(by_name) == {"copy.bin", "sub dir/nämé.txt", ".hidden"} and answer["skipped"] == []
    assert by_name["copy.bin"]["size"] == len(payload)
    assert by_name["copy.bin"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert _fetch(by_name["copy.bin"]["url"]) == payload  # a presigned GET, no key
    assert _fetch(by_name["sub dir/nämé.txt"]["url"]) == "ünï\n".encode()
    # the log: fetch's lines, then the command's, then publish's, in that order
    order = [lines.index(mark) for mark in ("→ Downloading inputs...", "Executing command...", "tool ran", "✓ Command completed successfully")]
    assert order == sorted(order)
    assert lines[-1] == "→ Artifacts: 3 files, 293.0 KiB"
    # the helpers signed their S3 calls with the task role's credentials, from the endpoint
    role = boto3.client("iam").list_roles()["Roles"]
    assert any(arn.split("/")[-1] in {r["RoleName"] for r in role} for arn in aws.sim.credentials.asked)


def test_inputs_are_readable_by_anyone_and_a_body_other_than_the_declared_one_is_refused(aws, tmp_path):
    (tmp_path / "x.sh").write_text("#!/bin/sh\necho x\n")
    (tmp_path / "x.sh").chmod(0o700)  # the image may run as another user: it arrives 755
    data = pack_uploads([tmp_path / "x.sh"], tmp_path).path.read_bytes()
    final, lines = run_to_the_end(aws.server, {"command": 'stat -c "%a" "$MYCLI_INPUTS/x.sh"', "skip_git": True,
                                               "inputs": _upload(aws, data)})
    assert final["exit_code"] == 0 and "755" in lines, lines
    answer = _call(aws, {"action": "upload", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(), "purpose": "inputs"})
    assert "X-Amz-SignedHeaders=content-length%3Bhost%3Bx-amz-checksum-sha256" in answer["url"]
    other = bytes([data[0] ^ 1]) + data[1:]
    request = urllib.request.Request(answer["url"], data=other, method="PUT", headers=answer["headers"])
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 400
    status, body = aws.server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": answer["upload_id"]})
    assert status == 400 and "upload the files again" in body["error"]
    status, body = aws.server.call({"action": "exec", "command": "true", "repo": "https://example.com/r.git",
                                    "local_changes": _upload(aws, data)})  # an inputs upload is not local changes
    assert status == 400 and "local_changes" in body["error"]


def test_outputs_come_back_after_a_failure_and_a_timeout(aws):
    final, lines = run_to_the_end(aws.server, {"command": 'echo partial > "$MYCLI_OUTPUTS/log.txt"; exit 3', "skip_git": True})
    assert final["exit_code"] == 3
    assert [a["name"] for a in _artifacts(aws, final["execution_id"])["artifacts"]] == ["log.txt"]
    final, lines = run_to_the_end(aws.server, {"command": 'echo before > "$MYCLI_OUTPUTS/t.txt"; sleep 60', "skip_git": True,
                                 "timeout_seconds": 2})
    assert final["exit_code"] == 124 and "✗ Timed out after 2 s, the run's --timeout" in lines
    answer = _artifacts(aws, final["execution_id"])
    assert [(a["name"], _fetch(a["url"])) for a in answer["artifacts"]] == [("t.txt", b"before\n")]


def test_only_regular_files_under_the_caps_leave_the_run(aws):
    command = "\n".join([
        'cd "$MYCLI_OUTPUTS"',
        "ln -s /etc/passwd passwd-link",
        "ln -s / root-link",
        "mkdir real && ln -s /etc real/etc-link && echo ok > real/ok.txt",
        "mkfifo pipe",
        "printf 'x' > \"$(printf 'new\\nline')\"",
        "head -c 2000000 /dev/zero > big.bin",
        "head -c 1000 /dev/zero > small.bin",
        "printf 2 > \"$(printf 'caf\\351.csv')\"",  # a Latin-1 name: left out alone, said escaped
    ])
    final, lines = run_to_the_end(aws.server, {"command": command, "skip_git": True})
    assert final["exit_code"] == 0, lines
    answer = _artifacts(aws, final["execution_id"])
    assert sorted(a["name"] for a in answer["artifacts"]) == ["real/ok.txt", "small.bin"]
    skipped = "\n".join(answer["skipped"])
    for expected in ("passwd-link: symbolic link", "root-link: symbolic link", "real/etc-link: symbolic link",
                     "pipe: not a regular file", "not a usable name", "big.bin: 2000000 bytes, over the per-file cap of 1 MiB"):
        assert expected in skipped, skipped
        assert any(expected in line for line in lines if line.startswith("→ Skipped ")), lines
    assert "'caf\\xe9.csv': not a usable name (not UTF-8)" in answer["skipped"], skipped
    assert "root:" not in "".join(_fetch(a["url"]).decode("latin-1") for a in answer["artifacts"])


def _stop_once_started(aws, command: str) -> str:
    """exec `command` (which prints `started` once its outputs are written), stop it, wait for STOPPED."""
    execution_id = _call(aws, {"action": "exec", "command": command, "skip_git": True})["execution_id"]
    deadline = time.monotonic() + 60
    while "started" not in aws.server.all_lines(execution_id):
        assert time.monotonic() < deadline, aws.server.all_lines(execution_id)
        time.sleep(0.2)
    assert _call(aws, {"action": "artifacts", "execution_id": execution_id})["complete"] is False  # still running
    _call(aws, {"action": "stop", "execution_id": execution_id})
    while (status := _call(aws, {"action": "status", "execution_id": execution_id}))["status"] != "STOPPED":
        assert time.monotonic() < deadline + 60, status
        time.sleep(0.2)
    assert status["exit_code"] == 130 and status["stop_code"] == "UserInitiated", status
    return execution_id


def test_a_stop_keeps_what_the_command_wrote(aws, tmp_path):
    """As on the embedded engine, a stopped run's outputs are collected: ECS stops the executor
    first (SIGTERM, which the script hands to the command: it may save its work) and publish only
    once the executor has stopped; publish then uploads and writes the manifest."""
    command = ('trap \'echo saved on stop > "$MYCLI_OUTPUTS/on-term.txt"; exit 3\' TERM; '
               'printf "partial result\\n" > "$MYCLI_OUTPUTS/result.txt"; echo started; while :; do sleep 1; done')
    execution_id = _stop_once_started(aws, command)
    answer = _artifacts(aws, execution_id)
    by_name = {a["name"]: a for a in answer["artifacts"]}
    assert set(by_name) == {"result.txt", "on-term.txt"} and answer["reason"] is None and answer["skipped"] == []
    assert by_name["result.txt"]["sha256"] == hashlib.sha256(b"partial result\n").hexdigest()
    assert _fetch(by_name["on-term.txt"]["url"]) == b"saved on stop\n"
    lines = aws.server.all_lines(execution_id)
    assert "→ Stopped: publishing what the command wrote before it stopped" in lines and "✗ Stopped" in lines
    assert lines[-1] == "→ Artifacts: 2 files, 29 bytes"
    # the client lists and downloads them, sha256 checked
    cli = Cli(aws.home, extra_env={**aws.env, "MYCLI_API_ENDPOINT": aws.server.url, "MYCLI_API_KEY": aws.server.key})
    listed = cli.run("artifacts", execution_id)
    assert listed.returncode == 0 and "result.txt" in listed.stdout, listed.stdout + listed.stderr
    done = cli.run("artifacts", execution_id, "-o", str(tmp_path / "out"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "result.txt").read_bytes() == b"partial result\n"


def test_a_stop_keeps_the_outputs_of_a_command_that_ignores_sigterm(aws):
    """The command ignores SIGTERM: the executor's script SIGKILLs it after its grace, well inside
    the executor's stop timeout, and publish still uploads what it wrote."""
    command = "trap '' TERM; echo kept > \"$MYCLI_OUTPUTS/kept.txt\"; echo started; while :; do sleep 1; done"
    execution_id = _stop_once_started(aws, command)
    answer = _artifacts(aws, execution_id)
    assert [(a["name"], a["size"], a["sha256"]) for a in answer["artifacts"]] == [
        ("kept.txt", 5, hashlib.sha256(b"kept\n").hexdigest())], answer
    assert aws.server.all_lines(execution_id)[-1] == "→ Artifacts: 1 file, 5 bytes"


def test_an_executor_killed_without_its_mark_ends_and_keeps_its_outputs(aws, tmp_path):
    """The executor's shell dies by SIGKILL (as when the memory limit's OOM killer picks it): its
    EXIT trap never runs, so publish learns the executor stopped from ECS's task metadata; the
    run ends by itself (not at its timeout) with the executor's 137 and what it wrote."""
    command = 'echo before > "$MYCLI_OUTPUTS/before.txt"; echo started; kill -9 $PPID; sleep 60'
    final, lines = run_to_the_end(aws.server, {"command": command, "skip_git": True, "timeout_seconds": 20})
    assert (final["status"], final["exit_code"], final["stop_code"]) == ("STOPPED", 137, "EssentialContainerExited"), final
    assert any(line.startswith("✗ The command's container ended before its script did (exit code 137") for line in lines), lines
    assert lines[-1] == "→ Artifacts: 1 file, 7 bytes"
    cli = Cli(aws.home, extra_env={**aws.env, "MYCLI_API_ENDPOINT": aws.server.url, "MYCLI_API_KEY": aws.server.key})
    listed = cli.run("artifacts", final["execution_id"])
    assert listed.returncode == 0 and "before.txt" in listed.stdout, listed.stdout + listed.stderr
    done = cli.run("artifacts", final["execution_id"], "-o", str(tmp_path / "out"))
    assert done.returncode == 0 and (tmp_path / "out" / "before.txt").read_bytes() == b"before\n", done.stdout + done.stderr
    # publish asked ECS's view, through the endpoint every container of the task is given
    assert "publish" in aws.sim.metadata.asked


def test_a_stop_during_the_upload_keeps_the_commands_own_exit_code(aws):
    """The command has ended (exit 5) and publish is uploading when `stop` comes: the stop cuts the
    upload short, but the run's exit code is the command's, not the stop's 130."""
    aws.sim.credentials.open.clear()  # publish's first upload waits for the task role's credentials
    try:
        command = 'echo kept > "$MYCLI_OUTPUTS/kept.txt"; exit 5'
        execution_id = _call(aws, {"action": "exec", "command": command, "skip_git": True})["execution_id"]
        deadline = time.monotonic() + 60
        while True:
            task_arn = _call(aws, {"action": "status", "execution_id": execution_id})["task_arn"]
            task = aws.ecs.describe_tasks(cluster=f"{STACK}-cluster", tasks=[task_arn])["tasks"] if task_arn.startswith("arn:") else []
            executor = next((c for t in task for c in t["containers"] if c["name"] == "executor"), {})
            if executor.get("lastStatus") == "STOPPED":
                break
            assert time.monotonic() < deadline, task
            time.sleep(0.2)
        assert executor["exitCode"] == 5, task  # and publish is held mid-upload: the run goes on
        assert _call(aws, {"action": "status", "execution_id": execution_id})["status"] == "RUNNING"
        _call(aws, {"action": "stop", "execution_id": execution_id})
    finally:
        aws.sim.credentials.open.set()
    while (status := _call(aws, {"action": "status", "execution_id": execution_id}))["status"] != "STOPPED":
        assert time.monotonic() < deadline + 60, status
        time.sleep(0.2)
    assert (status["exit_code"], status["stop_code"]) == (5, "UserInitiated"), status
    assert [a["name"] for a in _artifacts(aws, execution_id)["artifacts"]] == ["kept.txt"]


def test_local_changes_arrive_and_the_token_stays_in_fetch(aws, tmp_path):
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(aws.origin), str(work)], check=True)
    make_work_in_progress(work)
    changes = capture(work, "main")
    upload_id = _upload(aws, changes.archive, purpose="local_changes")
    command = 'git rev-parse HEAD; tar -cf - --exclude=.git --exclude="*.log" . | gzip > "$MYCLI_OUTPUTS/tree.tgz"; env | sort'
    final, lines = run_to_the_end(aws.server, {"command": command, "repo": f"http://{aws.repo.host}/origin.git", "branch": "main",
                                 "local_changes": upload_id})
    assert final["exit_code"] == 0, lines
    assert any(line.startswith("✓ Local changes applied: 1 local commit") for line in lines)
    assert git(work, "rev-parse", "HEAD") in lines
    tree = _fetch(next(a["url"] for a in _artifacts(aws, final["execution_id"])["artifacts"] if a["name"] == "tree.tgz"))
    run = tmp_path / "run"
    with tarfile.open(fileobj=io.BytesIO(tree)) as tar:
        tar.extractall(run, filter="data")
    assert snapshot(run) == snapshot(work)
    # the git credentials: in fetch's environment only — not the executor's, not the overrides, not the log
    task = aws.ecs.describe_tasks(cluster=f"{STACK}-cluster", tasks=[final["task_arn"]])["tasks"][0]
    assert aws.sim.environments[(final["task_arn"], "fetch")]["MYCLI_GITHUB_TOKEN"] == TOKEN
    assert not any(TOKEN in value for value in aws.sim.environments[(final["task_arn"], "executor")].values())
    assert TOKEN not in json.dumps(task["overrides"]) and not any(TOKEN in line for line in lines)
    assert not any(line.startswith("MYCLI_GITHUB_TOKEN=") for line in lines)


def test_a_failed_clone_is_the_executors_200_and_publish_still_answers(aws):
    final, lines = run_to_the_end(aws.server, {"command": "echo never", "repo": f"http://{aws.repo.host}/missing.git", "branch": "main"})
    assert final["exit_code"] == 200 and "never" not in lines
    assert any("the repository could not be cloned" in line for line in lines)
    answer = _artifacts(aws, final["execution_id"])
    assert answer["artifacts"] == [] and answer["reason"] is None


def test_the_cli_uploads_and_downloads_through_s3(aws, tmp_path):
    """The real client against the AWS engine: `--upload` PUTs to the presigned URL (no API key
    sent to S3), `--wait --download` and `mycli artifacts -o` fetch the presigned GETs, sha256
    checked; `--local-changes` carries the working tree."""
    cli = Cli(aws.home, extra_env={**aws.env, "MYCLI_API_ENDPOINT": aws.server.url, "MYCLI_API_KEY": aws.server.key})
    (tmp_path / "in.bin").write_bytes(os.urandom(70_000))
    done = cli.run("exec", "--skip-git", "--upload", str(tmp_path / "in.bin"), "--wait", "--download", str(tmp_path / "out"),
                   "--", 'cp "$MYCLI_INPUTS/in.bin" "$MYCLI_OUTPUTS/back.bin"', timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "out" / "back.bin").read_bytes() == (tmp_path / "in.bin").read_bytes()
    listed = cli.run("list", "--json")
    execution_id = json.loads(listed.stdout)["executions"][0]["execution_id"]
    again = cli.run("artifacts", execution_id, "-o", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again" / "back.bin").read_bytes() == (tmp_path / "in.bin").read_bytes()
    work = tmp_path / "work"
    subprocess.run(["git", "clone", "-q", f"http://x-access-token:{TOKEN}@{aws.repo.host}/origin.git", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "remote", "set-url", "origin", f"http://{aws.repo.host}/origin.git"], check=True)
    (work / "app.py").write_text("print('local, not pushed')\n")
    done = cli.run("exec", "--local-changes", "--repo", f"http://{aws.repo.host}/origin.git", "--branch", "main", "--wait",
                   "--", "cat app.py", cwd=work, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "print('local, not pushed')" in done.stdout


def test_destroy_empties_the_bucket_first(aws):
    """A bucket with objects cannot be deleted (aws_rules enforces it, CloudFormation's delete
    included): destroy empties it. Runs last: it removes the module's stack."""
    assert aws.s3.list_objects_v2(Bucket=aws.bucket)["KeyCount"] > 0
    block = aws.s3.get_public_access_block(Bucket=aws.bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert aws.s3.get_bucket_encryption(Bucket=aws.bucket)["ServerSideEncryptionConfiguration"]["Rules"][0][
        "ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(aws.s3.get_bucket_policy(Bucket=aws.bucket)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    done = aws.deployer.run("destroy", "--force", "--region", REGION, "--stack-name", STACK, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Emptying bucket" in done.stdout
    assert aws.bucket not in [b["Name"] for b in aws.s3.list_buckets()["Buckets"]]
