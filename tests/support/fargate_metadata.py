"""A stand-in for ECS's task metadata endpoint v4 (Fargate platform 1.4+): every container of a
task gets its own `ECS_CONTAINER_METADATA_URI_V4`, and GETting `{uri}/task` answers the task's
metadata as the agent knows it at that moment — `Containers[]` with each container's `Name`,
`DesiredStatus`, `KnownStatus` (NONE until it starts, RUNNING, STOPPED) and, once it has exited,
`ExitCode` (omitted before, and for a container that never ran). `{uri}` alone answers that
container's own entry. The shape follows "Amazon ECS task metadata v4 JSON response for tasks on
Fargate"; the states come from the simulated task itself (a callable), never from a script.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TaskView = Callable[[], dict]  # the task's metadata document, built when asked


class MetadataEndpoint:
    def __init__(self):
        self.views: dict[str, tuple[TaskView, str]] = {}  # token → (the task's view, the container's name)
        self.asked: list[str] = []  # the containers that asked, by name
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                parts = self.path.strip("/").split("/")
                known = endpoint.views.get(parts[1]) if len(parts) in (2, 3) and parts[0] == "v4" else None
                if known is None or (len(parts) == 3 and parts[2] != "task"):
                    self.send_response(404)
                    self.end_headers()
                    return
                view, name = known
                endpoint.asked.append(name)
                task = view()
                if len(parts) == 2:
                    task = next((c for c in task["Containers"] if c["Name"] == name), {})
                body = json.dumps(task, indent=4).encode()  # the agent answers indented JSON
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

    def env_for(self, view: TaskView, container: str) -> dict[str, str]:
        """What ECS puts in a container's environment: its own endpoint URI."""
        token = secrets.token_hex(16)
        self.views[token] = (view, container)
        host, port = self.server.server_address[:2]
        return {"ECS_CONTAINER_METADATA_URI_V4": f"http://{host}:{port}/v4/{token}"}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def container_entry(task_id: str, name: str, image: str, known: str, desired: str, exit_code: int | None) -> dict:
    """One `Containers[]` entry, with the fields ECS gives (ExitCode only once it has exited)."""
    entry = {
        "DockerId": f"{task_id}-{abs(hash(name)) % 10**10:010d}", "Name": name, "DockerName": name, "Image": image,
        "Labels": {"com.amazonaws.ecs.container-name": name, "com.amazonaws.ecs.task-arn": task_id},
        "DesiredStatus": desired, "KnownStatus": known, "Limits": {"CPU": 0},
        "Type": "NORMAL", "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["10.0.0.2"]}],
    }
    if exit_code is not None:
        entry["ExitCode"] = exit_code
    return entry
