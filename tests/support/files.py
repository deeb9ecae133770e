"""Files to and from a real server over real HTTP: the upload action and its PUT, the artifacts
action and its GETs (plain urllib; the X-API-Key goes only to the server's own origin)."""

from __future__ import annotations

import hashlib
import http.client
import io
import tarfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.server import Server


def origin(server: Server) -> tuple[str, int]:
    parts = urlsplit(server.url)
    return parts.hostname, parts.port


def request(server: Server, method: str, path: str, body: bytes | None = None, key: str | None = "default",
            headers: dict | None = None) -> tuple[int, bytes]:
    """One request on a fresh connection; (status, body)."""
    host, port = origin(server)
    conn = http.client.HTTPConnection(host, port, timeout=60)
    hdrs = dict(headers or {})
    if key is not None:
        hdrs["X-API-Key"] = server.key if key == "default" else key
    try:
        conn.request(method, path, body=body, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def ask_upload(server: Server, archive: bytes, purpose: str = "inputs", size: int | None = None) -> dict:
    status, body = server.call({"action": "upload", "size": len(archive) if size is None else size,
                                "sha256": hashlib.sha256(archive).hexdigest(), "purpose": purpose})
    assert status == 200, body
    return body


def upload(server: Server, archive: bytes, purpose: str = "inputs") -> str:
    """The upload action, then the PUT; the upload ID."""
    answer = ask_upload(server, archive, purpose)
    status, body = request(server, "PUT", answer["url"], archive, headers=answer["headers"])
    assert status == 200, body
    return answer["upload_id"]


def tar_gz(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A .tar.gz of {name: (content, mode)}."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def artifacts(server: Server, execution_id: str, timeout: float = 60) -> dict:
    """The artifacts action's answer once the collection is complete (long-polling the log)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = server.call({"action": "artifacts", "execution_id": execution_id})
        assert status == 200, body
        if body["complete"]:
            return body
        assert time.monotonic() < deadline, f"{execution_id}: artifacts not collected within {timeout} s"
        server.call({"action": "logs", "execution_id": execution_id, "wait_seconds": 2, "limit": 1,
                     "next_token": "999999999", "text": False})


def download(server: Server, item: dict) -> bytes:
    status, body = request(server, "GET", item["url"])
    assert status == 200, body[:300]
    assert len(body) == item["size"] and hashlib.sha256(body).hexdigest() == item["sha256"]
    return body


def state_files(state_dir: Path, *subdirs: str) -> list[Path]:
    """Every entry under the named dirs of the state dir (what an upload or a collection left)."""
    return sorted(p for sub in subdirs for p in (state_dir / sub).rglob("*"))
