"""What a run or a client may not do with files, each refused and changing nothing: links out of
the outputs (to the engine's database, /etc/shadow), `..` and absolute names on the way out,
caps, an upload whose body is not the one declared, a missing or foreign upload ID, requests
without the key. Real HTTP to real servers; links on every runtime."""

from __future__ import annotations

import hashlib
import os

import pytest

from tests.engines.test_files import by_name, follow_to_the_end, start
from tests.support.files import ask_upload, artifacts, download, request, state_files, tar_gz, upload
from tests.support.server import start_server, stop_server

ARCHIVE = tar_gz({"a.txt": (b"A\n", 0o644)})


def test_links_and_special_files_in_the_outputs_are_never_followed(engine):
    db = engine.state_dir / "mycli.db"  # on the host runtime the command can name it; in a container, the same path
    command = (f'cd "$MYCLI_OUTPUTS" && ln -s {db} db && ln -s /etc/shadow shadow && ln -s / root && mkdir d && '
               f'ln -s /etc d/etc && mkfifo pipe && ln {db} hard 2>/dev/null; echo ok > plain.txt')
    execution_id = start(engine, command)
    lines = follow_to_the_end(engine, execution_id)
    listing = artifacts(engine, execution_id)
    names = set(by_name(listing))
    assert names <= {"plain.txt", "hard"}, names
    assert "plain.txt" in names
    if "hard" in names:  # a hard link is the file itself: only when the command could read the database anyway
        assert engine.runtime == "host"
    for skipped in ("db", "shadow", "root", "d/etc", "pipe"):
        assert any(line.startswith(f"{skipped}: ") for line in listing["skipped"]), (skipped, listing["skipped"])
        assert any(line.startswith(f"→ Skipped {skipped}: ") for line in lines)
    stored = {p.relative_to(engine.state_dir / "artifacts" / execution_id).as_posix()
              for p in (engine.state_dir / "artifacts" / execution_id).rglob("*") if p.is_file()}
    assert stored == names


def test_names_that_leave_the_artifact_store_are_404(engine):
    execution_id = start(engine, 'echo ok > "$MYCLI_OUTPUTS/ok.txt"')
    follow_to_the_end(engine, execution_id)
    assert download(engine, by_name(artifacts(engine, execution_id))["ok.txt"]) == b"ok\n"
    for path in (f"/artifacts/{execution_id}/../../mycli.db", f"/artifacts/{execution_id}/%2e%2e/%2e%2e/mycli.db",
                 f"/artifacts/{execution_id}//etc/passwd", f"/artifacts/{execution_id}/%2Fetc%2Fpasswd",
                 f"/artifacts/{execution_id}/sub/../ok.txt", f"/artifacts/{execution_id}/./ok.txt",
                 "/artifacts/../engine/mycli.db", f"/artifacts/{execution_id}/ok.txt%00",
                 f"/artifacts/{execution_id}/%ff", f"/artifacts/{execution_id}/", "/artifacts/"):
        status, body = request(engine, "GET", path)
        assert status == 404 and b"SQLite" not in body and b"root:" not in body, (path, status, body[:200])


def test_without_the_key_nothing_is_served_or_received(engine):
    execution_id = start(engine, 'echo secret > "$MYCLI_OUTPUTS/s.txt"')
    follow_to_the_end(engine, execution_id)
    url = by_name(artifacts(engine, execution_id))["s.txt"]["url"]
    answer = ask_upload(engine, ARCHIVE)
    before = state_files(engine.state_dir, "uploads")
    for key in (None, "sk_live_wrong"):
        status, body = request(engine, "GET", url, key=key)
        assert status == 401 and b"secret" not in body
        status, body = request(engine, "PUT", answer["url"], ARCHIVE, key=key)
        assert status == 401, body
    assert state_files(engine.state_dir, "uploads") == before
    status, body = engine.call({"action": "exec", "command": "true", "skip_git": True, "inputs": answer["upload_id"]})
    assert status == 400 and "not been received" in body["error"], body


def put(server, answer: dict, body: bytes, **headers) -> tuple[int, dict]:
    import json

    status, raw = request(server, "PUT", answer["url"], body, headers=headers or None)
    return status, json.loads(raw)


def test_a_body_that_is_not_the_declared_one_is_not_kept(server):
    answer = ask_upload(server, ARCHIVE)
    before = state_files(server.state_dir, "uploads")
    wrong = bytearray(ARCHIVE)
    wrong[-1] ^= 1
    status, body = put(server, answer, bytes(wrong))
    assert status == 400 and "sha256" in body["error"], body
    status, body = put(server, answer, ARCHIVE + b"x")
    assert status == 400 and "Content-Length" in body["error"], body
    status, body = put(server, answer, ARCHIVE[:-1])
    assert status == 400 and "Content-Length" in body["error"], body
    assert state_files(server.state_dir, "uploads") == before
    status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": answer["upload_id"]})
    assert status == 400 and "not been received" in body["error"], body
    status, body = put(server, answer, ARCHIVE)  # the right body still may come
    assert status == 200 and body["sha256"] == hashlib.sha256(ARCHIVE).hexdigest()
    status, body = put(server, answer, ARCHIVE)  # once
    assert status == 400 and "already received" in body["error"], body


def test_missing_and_foreign_upload_ids_are_refused(server):
    missing = "up-" + os.urandom(16).hex()
    status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": missing})
    assert status == 400 and missing in body["error"], body
    status, _ = request(server, "PUT", f"/uploads/{missing}", ARCHIVE)
    assert status == 404
    status, _ = request(server, "PUT", "/uploads/../mycli.db", ARCHIVE)
    assert status == 404
    changes = upload(server, ARCHIVE, purpose="local_changes")  # of the other purpose
    status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": changes})
    assert status == 400 and "inputs" in body["error"], body
    assert not (server.state_dir / "mycli.db.part").exists()


def test_an_archive_that_would_escape_is_a_400_and_no_run(server, tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        link = tarfile.TarInfo("escape")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tar.addfile(link)
    before = server.call({"action": "list", "limit": 1000})[1]["executions"]
    upload_id = upload(server, buffer.getvalue())
    status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": upload_id})
    assert status == 400 and "inputs archive" in body["error"], body
    assert server.call({"action": "list", "limit": 1000})[1]["executions"] == before
    assert list((server.state_dir / "staging").iterdir()) == []
    upload_id = upload(server, b"not a tar.gz at all")
    status, body = server.call({"action": "exec", "command": "true", "skip_git": True, "inputs": upload_id})
    assert status == 400 and "cannot be extracted" in body["error"], body


@pytest.fixture(scope="module")
def capped(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("capped"), {"MYCLI_MAX_UPLOAD_MB": "0.001", "MYCLI_MAX_ARTIFACT_MB": "0.5",
                                                           "MYCLI_MAX_ARTIFACTS_MB": "1"})
    yield srv
    stop_server(srv)


def test_caps_on_artifacts_skip_and_say_so(capped):
    command = ('cd "$MYCLI_OUTPUTS" && head -c 600000 /dev/zero > big && head -c 400000 /dev/zero > a && '
               'head -c 400000 /dev/zero > b && head -c 400000 /dev/zero > c')
    execution_id = start(capped, command)
    lines = follow_to_the_end(capped, execution_id)
    listing = artifacts(capped, execution_id)
    assert sorted(by_name(listing)) == ["a", "b"]
    assert any(line.startswith("big: 600,000 bytes, over the per-file cap") for line in listing["skipped"])
    assert any(line.startswith("c: 400,000 bytes would exceed the per-run cap") for line in listing["skipped"])
    assert "→ Artifacts: 2 files, 781.2 KiB" in lines
    assert any(line.startswith("→ Skipped big: ") for line in lines)


def test_the_upload_cap_is_a_400_then_a_413(capped):
    status, body = capped.call({"action": "upload", "size": 2000, "sha256": "0" * 64, "purpose": "inputs"})
    assert status == 400 and "MYCLI_MAX_UPLOAD_MB" in body["error"], body
    answer = ask_upload(capped, ARCHIVE)
    status, body = request(capped, "PUT", answer["url"], b"x" * 5000)
    assert status == 413, body
    assert state_files(capped.state_dir, "uploads") == []


def test_expect_100_continue_is_answered_only_after_the_key(server):
    import socket

    from tests.support.files import origin

    answer = ask_upload(server, ARCHIVE)

    def head(key: str) -> bytes:
        return (f"PUT {answer['url']} HTTP/1.1\r\nHost: localhost\r\nX-API-Key: {key}\r\n"
                f"Content-Length: {len(ARCHIVE)}\r\nExpect: 100-continue\r\n\r\n").encode()

    with socket.create_connection(origin(server), timeout=30) as sock:
        sock.sendall(head("sk_live_wrong"))
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 401") and b"100 Continue" not in first, first
    with socket.create_connection(origin(server), timeout=30) as sock:
        sock.sendall(head(server.key))
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(ARCHIVE)
        assert sock.recv(65536).startswith(b"HTTP/1.1 200")
