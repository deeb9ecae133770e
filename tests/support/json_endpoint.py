"""The HTTP half of the simulator's in-task endpoints (credentials, task metadata): a threaded
local server that answers GETs with JSON, so each stand-in only says what it answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class JsonEndpoint:
    """Subclasses implement `answer`; `url` is where the containers reach it."""

    indent: int | None = None  # the ECS agent indents its metadata; the credentials endpoint does not

    def __init__(self):
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                status, document = endpoint.answer(self.path, self.headers)
                body = b"" if document is None else json.dumps(document, indent=endpoint.indent).encode()
                self.send_response(status)
                if document is not None:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, headers) -> tuple[int, object | None]:
        """(HTTP status, the JSON document or None for an empty body)."""
        raise NotImplementedError

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
