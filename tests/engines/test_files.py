"""Files in and out of a run on the embedded engine, over real HTTP to a real server, on the
host, in docker and in podman (busybox: any image with /bin/sh): outputs come back after
success, failure, timeout and stop; uploads arrive byte for byte with their modes; the log
and the artifacts action say what was collected, and the log is complete only after that."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
import time

import pytest

from mycli_magic.transfer import pack_uploads
from tests.support.files import artifacts, download, request, tar_gz, upload
from tests.support.server import follow_to_the_end

WRITE = "mkdir -p $MYCLI_OUTPUTS/sub && printf 'result\\n' > $MYCLI_OUTPUTS/result.txt && echo nested > $MYCLI_OUTPUTS/sub/n.txt"


def by_name(listing: dict) -> dict[str, dict]:
    return {item["name"]: item for item in listing["artifacts"]}


def start(engine, command: str, **fields) -> str:
    status, body = engine.call({"action": "exec", "command": command, "skip_git": True, **fields})
    assert status == 200, body
    return body["execution_id"]


@pytest.mark.parametrize("how, command, fields, exit_code", [
    ("success", WRITE, {}, 0),
    ("failure", WRITE + " && exit 7", {}, 7),
    ("timeout", WRITE + " && sleep 60", {"timeout_seconds": 2}, 124),
])
def test_outputs_come_back_however_the_run_ends(engine, how, command, fields, exit_code):
    execution_id = start(engine, command, **fields)
    lines = follow_to_the_end(engine, execution_id)
    assert engine.call({"action": "status", "execution_id": execution_id})[1]["exit_code"] == exit_code
    assert "→ Artifacts: 2 files, 14 bytes" in lines  # in the log a follower read to its end
    listing = artifacts(engine, execution_id)
    assert listing["complete"] is True and listing["reason"] is None and listing["skipped"] == []
    items = by_name(listing)
    assert sorted(items) == ["result.txt", "sub/n.txt"]
    assert download(engine, items["result.txt"]) == b"result\n"
    assert download(engine, items["sub/n.txt"]) == b"nested\n"
    assert items["result.txt"]["sha256"] == hashlib.sha256(b"result\n").hexdigest()


def test_outputs_come_back_after_a_stop(engine):
    execution_id = start(engine, WRITE + " && echo written && sleep 60")
    deadline = time.monotonic() + 60
    while "written" not in engine.all_lines(execution_id):
        assert time.monotonic() < deadline, "the command did not write its outputs"
        time.sleep(0.2)
    assert engine.call({"action": "stop", "execution_id": execution_id})[0] == 200
    follow_to_the_end(engine, execution_id)
    assert engine.call({"action": "status", "execution_id": execution_id})[1]["exit_code"] == 130
    items = by_name(artifacts(engine, execution_id))
    assert download(engine, items["result.txt"]) == b"result\n" and "sub/n.txt" in items


def test_every_run_has_an_empty_outputs_dir_and_an_inputs_dir(engine):
    execution_id = start(engine, 'ls -A "$MYCLI_OUTPUTS" | wc -l; test -d "$MYCLI_INPUTS" && echo inputs-here')
    lines = follow_to_the_end(engine, execution_id)
    assert "0" in [line.strip() for line in lines] and "inputs-here" in lines
    listing = artifacts(engine, execution_id)
    assert listing == {"execution_id": execution_id, "artifacts": [], "complete": True, "skipped": [], "reason": None}
    assert not any(line.startswith("→ Artifacts") for line in lines)  # nothing to say


def test_uploads_arrive_byte_for_byte_with_their_modes(engine, tmp_path):
    src = tmp_path / "src"
    (src / "data" / "deep").mkdir(parents=True)
    blob = os.urandom(300_000)
    (src / "data" / "blob.bin").write_bytes(blob)
    (src / "data" / "deep" / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (src / "data" / "deep" / "run.sh").chmod(0o755)
    (src / "data" / "ro.txt").write_text("read only\n")
    (src / "data" / "ro.txt").chmod(0o444)
    (src / "single file.txt").write_text("ünïcode\n")
    packed = pack_uploads([src / "data", src / "single file.txt"], tmp_path)
    upload_id = upload(engine, packed.path.read_bytes())
    # the run copies its inputs to its outputs, keeping modes, and lists the modes in the log
    command = ('cd "$MYCLI_INPUTS" && find . -type f | sort | while read -r f; do '
               'echo "mode $(stat -c %a "$f") $f"; done && cp -Rp . "$MYCLI_OUTPUTS"/ && ./data/deep/run.sh')
    execution_id = start(engine, command, inputs=upload_id)
    lines = follow_to_the_end(engine, execution_id)
    assert engine.call({"action": "status", "execution_id": execution_id})[1]["exit_code"] == 0, lines
    # tarfile's data filter gives the owner read and write: 444 arrives as 644
    assert {"mode 644 ./data/blob.bin", "mode 755 ./data/deep/run.sh", "mode 644 ./data/ro.txt",
            "mode 644 ./single file.txt", "ran"} <= set(lines)
    items = by_name(artifacts(engine, execution_id))
    assert download(engine, items["data/blob.bin"]) == blob
    assert download(engine, items["single file.txt"]) == "ünïcode\n".encode()
    assert download(engine, items["data/deep/run.sh"]) == b"#!/bin/sh\necho ran\n"


def test_one_upload_serves_several_runs_and_local_changes_are_not_inputs(engine):
    upload_id = upload(engine, tar_gz({"a.txt": (b"A\n", 0o644)}))
    for _ in range(2):
        execution_id = start(engine, 'cat "$MYCLI_INPUTS/a.txt"', inputs=upload_id)
        assert "A" in follow_to_the_end(engine, execution_id)
    status, body = engine.call({"action": "exec", "command": "true", "repo": "/nowhere", "local_changes": upload_id})
    assert status == 400 and "local_changes" in body["error"], body


def test_what_was_collected_is_private_in_the_state_dir(engine):
    execution_id = start(engine, WRITE + " && chmod 666 $MYCLI_OUTPUTS/result.txt")
    follow_to_the_end(engine, execution_id)
    root = engine.state_dir / "artifacts" / execution_id
    entries = [root, *root.rglob("*")]
    assert len(entries) == 4
    for path in entries:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), (path, oct(mode))
    files, deadline = engine.state_dir / "work" / f"{execution_id}.files", time.monotonic() + 30
    while files.exists() and time.monotonic() < deadline:  # removed once the collection is complete
        time.sleep(0.05)
    assert not files.exists()


def test_a_tarball_of_the_outputs_round_trips(engine, tmp_path):
    """What a command packs comes back whole: bytes, and the modes inside its tar."""
    command = ('mkdir t && printf x > t/x && chmod 750 t/x && tar cf "$MYCLI_OUTPUTS/t.tar" t')
    execution_id = start(engine, command)
    follow_to_the_end(engine, execution_id)
    data = download(engine, by_name(artifacts(engine, execution_id))["t.tar"])
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        assert stat.S_IMODE(tar.getmember("t/x").mode) == 0o750


def test_artifacts_of_an_unknown_execution_is_404(engine):
    status, body = engine.call({"action": "artifacts", "execution_id": "0123456789ab"})
    assert status == 404, body
    assert request(engine, "GET", "/artifacts/0123456789ab/x")[0] == 404
