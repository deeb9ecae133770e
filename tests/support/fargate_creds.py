"""A stand-in for ECS's container credentials endpoint (169.254.170.2 on Fargate): every
container of a task gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and an authorization token, and
GETting it answers the task role's temporary credentials as ECS does (AccessKeyId,
SecretAccessKey, Token, Expiration, RoleArn). The keys are the moto server's fake ones; which
task asked is recorded, so a test can tell the helper containers really used it.
"""

from __future__ import annotations

import json
import secrets
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class CredentialsEndpoint:
    def __init__(self, access_key: str = "testing", secret_key: str = "testing"):
        self.access_key, self.secret_key = access_key, secret_key
        self.roles: dict[str, str] = {}  # token → the task role ARN
        self.asked: list[str] = []  # the role ARNs credentials were handed out for
        self.open = threading.Event()  # cleared: requests wait (a test holds a helper mid-upload)
        self.open.set()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                role = endpoint.roles.get(self.headers.get("Authorization") or "")
                if role is None or self.path != "/v2/credentials":
                    self.send_response(403)
                    self.end_headers()
                    return
                endpoint.asked.append(role)
                endpoint.open.wait(120)
                body = json.dumps({
                    "AccessKeyId": endpoint.access_key, "SecretAccessKey": endpoint.secret_key,
                    "Token": "task-session-token", "RoleArn": role,
                    "Expiration": (datetime.now(timezone.utc) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                }).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def env_for(self, role_arn: str) -> dict[str, str]:
        """What ECS puts in each container of a task with this task role."""
        token = secrets.token_hex(16)
        self.roles[token] = role_arn
        host, port = self.server.server_address[:2]
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"http://{host}:{port}/v2/credentials",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": token}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
