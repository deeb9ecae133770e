"""A stand-in for ECS's task metadata endpoint v4 (Fargate platform 1.4+): every container of a
task gets its own `ECS_CONTAINER_METADATA_URI_V4`, and GETting `{uri}/task` answers the task's
metadata as the agent knows it at that moment — `Containers[]` with each container's `Name`,
`DesiredStatus`, `KnownStatus` (NONE until it starts, RUNNING, STOPPED) and, once it has exited,
`ExitCode` (omitted before, and for a container that never ran). `{uri}` alone answers that
container's own entry. The shape follows "Amazon ECS task metadata v4 JSON response for tasks on
Fargate"; the states come from the simulated task itself (a callable), never from a script.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from tests.support.json_endpoint import JsonEndpoint

TaskView = Callable[[], dict]  # the task's metadata document, built when asked


class MetadataEndpoint(JsonEndpoint):
    indent = 4  # the agent answers indented JSON

    def __init__(self):
        self.views: dict[str, tuple[TaskView, str]] = {}  # token → (the task's view, the container's name)
        self.asked: list[str] = []  # the containers that asked, by name
        super().__init__()

    def answer(self, path: str, headers) -> tuple[int, object | None]:
        parts = path.strip("/").split("/")
        known = self.views.get(parts[1]) if len(parts) in (2, 3) and parts[0] == "v4" else None
        if known is None or (len(parts) == 3 and parts[2] != "task"):
            return 404, None
        view, name = known
        self.asked.append(name)
        task = view()
        if len(parts) == 2:
            task = next((c for c in task["Containers"] if c["Name"] == name), {})
        return 200, task

    def env_for(self, view: TaskView, container: str) -> dict[str, str]:
        """What ECS puts in a container's environment: its own endpoint URI."""
        token = secrets.token_hex(16)
        self.views[token] = (view, container)
        return {"ECS_CONTAINER_METADATA_URI_V4": f"{self.url}/v4/{token}"}


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
