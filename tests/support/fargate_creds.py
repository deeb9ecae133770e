"""A stand-in for ECS's container credentials endpoint (169.254.170.2 on Fargate): every
container of a task gets `AWS_CONTAINER_CREDENTIALS_FULL_URI` and an authorization token, and
GETting it answers the task role's temporary credentials as ECS does (AccessKeyId,
SecretAccessKey, Token, Expiration, RoleArn). The keys are the moto server's fake ones; which
task asked is recorded, so a test can tell the helper containers really used it.
"""

from __future__ import annotations

import secrets
import threading
from datetime import datetime, timedelta, timezone

from tests.support.json_endpoint import JsonEndpoint


class CredentialsEndpoint(JsonEndpoint):
    def __init__(self, access_key: str = "testing", secret_key: str = "testing"):
        self.access_key, self.secret_key = access_key, secret_key
        self.roles: dict[str, str] = {}  # token → the task role ARN
        self.asked: list[str] = []  # the role ARNs credentials were handed out for
        self.open = threading.Event()  # cleared: requests wait (a test holds a helper mid-upload)
        self.open.set()
        super().__init__()

    def answer(self, path: str, headers) -> tuple[int, object | None]:
        role = self.roles.get(headers.get("Authorization") or "")
        if role is None or path != "/v2/credentials":
            return 403, None
        self.asked.append(role)
        self.open.wait(120)
        return 200, {
            "AccessKeyId": self.access_key, "SecretAccessKey": self.secret_key,
            "Token": "task-session-token", "RoleArn": role,
            "Expiration": (datetime.now(timezone.utc) + timedelta(hours=6)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }

    def env_for(self, role_arn: str) -> dict[str, str]:
        """What ECS puts in each container of a task with this task role."""
        token = secrets.token_hex(16)
        self.roles[token] = role_arn
        return {"AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{self.url}/v2/credentials",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN": token}

