"""The local HTTP front: `POST /execute` and `GET /health`, each request turned into the same
API Gateway proxy event the Lambda receives, and answered by the same `App.handle`.

Connections are held by http_front.py (one thread waits on all of them; bounded, with
deadlines), requests are answered by worker threads, so a long-polling logs call never holds up
an exec. The API key is checked from the headers before the body is read; a body over the limit
is refused from its Content-Length.
"""

from __future__ import annotations

import json
import logging
import os
import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from . import __version__
from .api import MAX_BODY_BYTES, App, response
from .auth import Authenticator, generate_api_key, hash_api_key, parse_hashes
from .errors import ApiError, BadRequest, MethodNotAllowed, PayloadTooLarge
from .http_files import ARTIFACTS_PREFIX, UPLOADS_PREFIX, get_artifact, put_upload
from .http_front import Connection, ConnectionServer
from .statedir import make_umask_private, open_private, prepare_state_dir, write_private

log = logging.getLogger("mycli.server")

EXECUTE_PATHS = ("/execute", "/prod/execute")
KEY_HASH_FILE = "api_key_hash"


def ensure_key_hashes(state_dir: Path, environ=os.environ) -> tuple[tuple[bytes, ...], str | None]:
    """The hashes to accept, and a newly generated plaintext key when one had to be made.

    API_KEY_HASH wins; otherwise the hash kept in the state dir; otherwise a new key is
    generated, its hash kept (mode 0600) and the key returned once for the caller to save.
    """
    hashes = parse_hashes(environ.get("API_KEY_HASH"))
    if hashes:
        return hashes, None
    path = Path(state_dir) / KEY_HASH_FILE
    try:
        with os.fdopen(open_private(path, os.O_RDONLY)) as fh:
            hashes = parse_hashes(fh.read())
        if hashes:
            return hashes, None
    except FileNotFoundError:
        pass
    key = generate_api_key()
    write_private(path, hash_api_key(key) + "\n")
    return parse_hashes(path.read_text()), key


class LocalServer(ConnectionServer):
    """The HTTP front over http_front's connections: each complete request is answered by a
    _Handler in a worker thread, so a long-polling logs call never holds up an exec."""

    def __init__(self, address: tuple[str, int], app: App, engine_name: str, **limits):
        self.app = app
        self.engine_name = engine_name
        super().__init__(address, lambda conn: _Handler(conn, self).answer(), **limits)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    """http.server's request parsing over a connection whose header has already arrived."""

    protocol_version = "HTTP/1.1"
    server: LocalServer
    server_version = f"mycli/{__version__}"

    def __init__(self, conn: Connection, server: LocalServer):  # noqa: super().__init__ would serve
        self.request = self.connection = conn.sock
        self.client_address = conn.addr
        self.server = server
        self.rfile = _Input(conn)
        self.wfile = _Output(conn.sock)
        self.close_connection = True

    def answer(self) -> bool:
        """Answer one request; True to keep the connection (what came after it stays buffered)."""
        self.handle_one_request()
        self.wfile.flush()  # http.server leaves its own error answers (400, 414...) unflushed
        return not self.close_connection

    def handle_expect_100(self) -> bool:
        try:  # the key before the client is told to send its body
            self.server.app.authenticate({"headers": dict(self.headers.items())})
        except ApiError as exc:
            self.close_connection = True
            self._send(response(exc.status, {"error": exc.message}))
            return False
        ok = super().handle_expect_100()
        self.wfile.flush()  # the client waits for the 100 before it sends the body
        return ok

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith(ARTIFACTS_PREFIX):
            get_artifact(self)
        elif self.path.split("?", 1)[0] == "/health":
            engine = self.server.app.engine
            self._send(response(200, {"status": "ok", "engine": self.server.engine_name, "version": __version__,
                                      "runtime": getattr(engine, "runtime", None),
                                      "runtime_reason": getattr(engine, "runtime_reason", None)}))
        else:
            self._send(response(404, {"error": "not found: POST /execute, GET /health or GET /artifacts/ID/NAME"}))

    def do_POST(self) -> None:  # noqa: N802
        if self.path.split("?", 1)[0] not in EXECUTE_PATHS:
            self.close_connection = True  # its body is not read
            self._send(response(404, {"error": "not found: POST /execute"}))
            return
        headers = {k: v for k, v in self.headers.items()}
        event = {"httpMethod": "POST", "path": "/execute", "resource": "/execute", "headers": headers, "body": None}
        try:
            self.server.app.authenticate(event)
            length = self._content_length()
        except ApiError as exc:
            self.close_connection = True
            self._send(response(exc.status, {"error": exc.message}))
            return
        body = self.rfile.read(length) if length else b""
        event["body"] = body.decode("utf-8", "surrogateescape")
        self._send(self.server.app.handle(event))

    def _content_length(self) -> int:
        if self.headers.get("Transfer-Encoding"):  # unread, its chunks would be parsed as a next request
            raise BadRequest("chunked request bodies are not supported; send a Content-Length")
        raw = self.headers.get("Content-Length")
        try:
            length = int(raw) if raw is not None else 0
        except ValueError:
            length = -1
        if length < 0:
            raise BadRequest("Content-Length is invalid")
        if length > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES // 1024} KiB")
        return length

    def _not_allowed(self) -> None:
        self.close_connection = True
        self._send(response(MethodNotAllowed.status, {"error": "method not allowed: POST /execute or GET /health"}))

    def do_PUT(self) -> None:  # noqa: N802
        if self.path.startswith(UPLOADS_PREFIX):
            put_upload(self)
        else:
            self._not_allowed()

    do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

    def _send(self, resp: dict) -> None:
        body = resp["body"].encode("utf-8", "surrogateescape")
        self.send_response(resp["statusCode"])
        for name, value in resp["headers"].items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


class _Input:
    """The request as a file: the bytes the selector already read, then the socket (blocking,
    with the worker's timeout). What is left after the request stays in `conn.buf`."""

    def __init__(self, conn: Connection):
        self.conn = conn

    def readline(self, limit: int = -1) -> bytes:
        buf = self.conn.buf
        while True:
            end = buf.find(b"\n", 0, limit if limit >= 0 else None)
            if end >= 0:
                return self._take(end + 1)
            if 0 <= limit <= len(buf) or not self._more():
                return self._take(len(buf) if limit < 0 else min(limit, len(buf)))

    def read(self, size: int) -> bytes:
        while len(self.conn.buf) < size and self._more():
            pass
        return self._take(min(size, len(self.conn.buf)))

    def _more(self) -> bool:
        data = self.conn.sock.recv(65536)
        self.conn.buf += data
        return bool(data)

    def _take(self, size: int) -> bytes:
        out = bytes(self.conn.buf[:size])
        del self.conn.buf[:size]
        return out


class _Output:
    """The answer, sent in one piece when http.server flushes (headers and body together: no
    small write waiting on a delayed ACK)."""

    def __init__(self, sock: socket.socket):
        self.sock, self.parts = sock, []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        if self.parts:
            data, self.parts = b"".join(self.parts), []
            self.sock.sendall(data)


def build_local_app(state_dir: Path, environ=os.environ, engine: str = "local") -> tuple[App, str | None, object]:
    """(app, new_key_or_None, engine object) for `mycli server`. Makes the state dir private (or
    refuses it: StateDirRefused) and this process's umask 077 first."""
    state_dir = prepare_state_dir(Path(state_dir))
    make_umask_private()
    hashes, new_key = ensure_key_hashes(state_dir, environ)
    if engine == "local":
        from .engines.local import LocalEngine

        engine_obj = LocalEngine(state_dir, environ)
    else:
        from .engines.ecs import EcsEngine

        engine_obj = EcsEngine.from_env(environ)
    return App(engine_obj, lambda: Authenticator(hashes)), new_key, engine_obj


def write_ready_file(path: Path, server: LocalServer) -> None:
    """Tell a parent process (the CLI's embedded mode) where we listen, atomically."""
    write_private(path, json.dumps({"url": server.url, "pid": os.getpid()}))
