"""The local server's file routes: `PUT /uploads/{upload_id}` and `GET /artifacts/{id}/{name}`.

Both need the same X-API-Key as `/execute`, checked from the headers before a body is read or a
file is opened. A PUT's Content-Length must be given, within the engine's cap and equal to the
size its `upload` action declared — all known before the body arrives — and the body is
streamed to disk, never held in memory. A GET streams the file with `sendfile` and a
Content-Length. Only the embedded engine serves files (on AWS the URLs are presigned S3 ones).
"""

from __future__ import annotations

import os
from urllib.parse import unquote

from .api import response
from .errors import ApiError, BadRequest, NotFound

UPLOADS_PREFIX = "/uploads/"
ARTIFACTS_PREFIX = "/artifacts/"


def put_upload(handler) -> None:
    """Receive one upload's archive; a JSON answer either way. A refused body is not read, so
    the connection is closed after the answer."""
    path = handler.path.split("?", 1)[0]
    try:
        files = _files(handler)
        if not path.startswith(UPLOADS_PREFIX):
            raise NotFound("not found: PUT /uploads/{upload_id}")
        length = _content_length(handler)
        uploads = files.uploads
        answer = uploads.receive(uploads.check_put(path[len(UPLOADS_PREFIX):], length), handler.rfile.read)
    except ApiError as exc:
        handler.close_connection = True  # the body (or its rest) was not read
        handler._send(response(exc.status, {"error": exc.message}))
        return
    handler._send(response(200, answer))


def get_artifact(handler) -> None:
    """Stream one artifact's bytes, or a JSON error."""
    path = handler.path.split("?", 1)[0]
    try:
        files = _files(handler)
        execution_id, _, quoted = path[len(ARTIFACTS_PREFIX):].partition("/")
        try:
            name = unquote(quoted, errors="strict")
        except UnicodeDecodeError:
            raise NotFound("no such artifact") from None
        fd, size = files.open_artifact(execution_id, name)
    except ApiError as exc:
        handler._send(response(exc.status, {"error": exc.message}))
        return
    with os.fdopen(fd, "rb") as fh:
        handler.send_response(200)
        handler.send_header("Content-Type", "application/octet-stream")
        handler.send_header("Content-Length", str(size))
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        handler.wfile.flush()
        sent = handler.connection.sendfile(fh, 0, size)
    if sent != size:  # the file shrank under us: the client sees a short body; end the connection
        handler.close_connection = True


def _files(handler):
    """Authenticate from the headers; the engine's files (engines/local_files.LocalFiles), if it serves them."""
    event = {"httpMethod": handler.command, "path": handler.path, "headers": dict(handler.headers.items()), "body": None}
    app = handler.server.app
    app.authenticate(event)
    files = getattr(app.engine, "files", None)
    if files is None:
        raise NotFound("this engine serves no files; use the URLs the upload and artifacts actions return")
    return files


def _content_length(handler) -> int | None:
    if handler.headers.get("Transfer-Encoding"):
        raise BadRequest("chunked request bodies are not supported; send a Content-Length")
    raw = handler.headers.get("Content-Length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.strip().isdigit()):
        raise BadRequest("Content-Length is invalid")
    return int(raw)
