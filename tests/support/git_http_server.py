"""A real git smart-HTTP server for tests: `git http-backend` behind basic auth on 127.0.0.1.

Used to prove a token reaches git through the credential helper (and nowhere else): the
server only serves repositories to a client that sends the expected user and token.
"""

from __future__ import annotations

import base64
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class GitHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, root: Path, user: str, password: str, delay: float = 0.0):
        self.root, self.user, self.password = Path(root), user, password
        self.delay = delay  # seconds each authorized request takes, so a test can watch a clone
        self.auth_attempts: list[str] = []  # "ok" / "missing" / "wrong", one per request
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: GitHttpServer

    def do_GET(self) -> None:  # noqa: N802
        self._cgi(b"")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        self._cgi(self.rfile.read(length) if length else b"")

    def _authorized(self) -> bool:
        expected = base64.b64encode(f"{self.server.user}:{self.server.password}".encode()).decode()
        got = self.headers.get("Authorization")
        self.server.auth_attempts.append("missing" if got is None else ("ok" if got == f"Basic {expected}" else "wrong"))
        return got == f"Basic {expected}"

    def _cgi(self, body: bytes) -> None:
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        time.sleep(self.server.delay)
        path, _, query = self.path.partition("?")
        env = {
            "GIT_PROJECT_ROOT": str(self.server.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "REQUEST_METHOD": self.command,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": self.server.user,
            "PATH": "/usr/bin:/bin",
        }
        if self.headers.get("Git-Protocol"):
            env["GIT_PROTOCOL"] = self.headers["Git-Protocol"]
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers.append((name, value.strip()))
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        pass
