"""The local HTTP front: `POST /execute` and `GET /health`, each request turned into the same
API Gateway proxy event the Lambda receives, and answered by the same `App.handle`.

Threaded, so a long-polling logs call never holds up an exec. The API key is checked from the
headers before the body is read; a body over the limit is refused from its Content-Length.
"""

from __future__ import annotations

import json
import logging
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from . import __version__
from .api import MAX_BODY_BYTES, App, response
from .auth import Authenticator, generate_api_key, hash_api_key, parse_hashes
from .errors import ApiError, BadRequest, MethodNotAllowed, PayloadTooLarge

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
    if path.exists():
        hashes = parse_hashes(path.read_text())
        if hashes:
            return hashes, None
    key = generate_api_key()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(hash_api_key(key) + "\n")
    return parse_hashes(path.read_text()), key


class LocalServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], app: App, engine_name: str):
        self.app = app
        self.engine_name = engine_name
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a connection may sit idle or half-sent (a logs long poll waits ≤ 20 s)
    server: LocalServer
    server_version = f"mycli/{__version__}"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] == "/health":
            engine = self.server.app.engine
            self._send(response(200, {"status": "ok", "engine": self.server.engine_name, "version": __version__,
                                      "runtime": getattr(engine, "runtime", None),
                                      "runtime_reason": getattr(engine, "runtime_reason", None)}))
        else:
            self._send(response(404, {"error": "not found: POST /execute or GET /health"}))

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

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed

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

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)


def build_local_app(state_dir: Path, environ=os.environ, engine: str = "local") -> tuple[App, str | None, object]:
    """(app, new_key_or_None, engine object) for `mycli server`."""
    state_dir = Path(state_dir)
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
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps({"url": server.url, "pid": os.getpid()}))
    os.replace(tmp, path)
