"""Per-image task definitions: `{base family}-{sanitized image}` (mycli-task-python-3-11), copied
from the stack's base definition (roles, secrets, log configuration, init process), reused while
the image matches *and* everything copied still matches the current base, with a hash suffix when
two images sanitize to the same name.

ECS has no per-RunTask image override, so each image needs a task definition; naming them after
the image keeps them few, recognisable in the console and cheap to find again. A copy goes stale
when the base changes under it (a re-created stack has a new secret ARN; a template update
changes the log options or roles): then a new revision is registered from the current base. Each
copy is tagged with the base revision it came from (DerivedFrom), for whoever reads the console.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
import time

from ..errors import ApiError, UpstreamError
from .ecs_aws import Clients, aws_errors, error_code

log = logging.getLogger("mycli.ecs")

MAX_SANITIZED = 50
# The executor's entryPoint, replacing the image's ENTRYPOINT (a binary's, such as terraform's,
# would take the command as its arguments): it runs the command it is given as it is, so the
# command stays `/bin/sh -c …` in the template, the overrides and one-off revisions alike — and
# with a stack whose definition has no entryPoint yet. The template's executor has the same.
EXECUTOR_ENTRYPOINT = ["/bin/sh", "-c", 'exec "$@"', "mycli"]
RECHECK_SECONDS = 300  # how long a warm process trusts a copy before comparing it with the base again
_UNSAFE = re.compile(r"[^a-z0-9-]+")

# What register_task_definition accepts back from describe_task_definition.
_COPIED = ("taskRoleArn", "executionRoleArn", "networkMode", "volumes", "placementConstraints",
           "requiresCompatibilities", "cpu", "memory", "runtimePlatform", "ephemeralStorage", "pidMode", "ipcMode")


def sanitize(image: str) -> str:
    """`hashicorp/terraform:1.6` → `hashicorp-terraform-1-6`: the seed's rule, plus any other
    character a family name cannot hold also becomes `-`."""
    name = _UNSAFE.sub("-", image.lower())
    return re.sub(r"-{2,}", "-", name)[:MAX_SANITIZED].strip("-") or "image"


def image_hash(image: str) -> str:
    return hashlib.sha256(image.encode()).hexdigest()[:8]


def candidate_families(base_family: str, image: str) -> tuple[str, str]:
    readable = f"{base_family}-{sanitize(image)}"
    return readable, f"{readable}-{image_hash(image)}"


class TaskDefinitions:
    """Finds or registers the task definition for an image; remembers answers per process."""

    def __init__(self, clients: Clients, base_family: str, container: str, default_image: str,
                 recheck_seconds: float = RECHECK_SECONDS):
        self.clients = clients
        self.base_family = base_family
        self.container = container
        self.default_image = default_image
        self.recheck_seconds = recheck_seconds
        self._cache: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def for_image(self, image: str | None) -> str:
        """The task definition (family:revision or family) to run `image` with."""
        if not image or image == self.default_image:
            return self.base_family
        with self._lock:
            arn, checked = self._cache.get(image, ("", 0.0))
            if not arn or time.monotonic() - checked >= self.recheck_seconds:
                arn = self._find_or_register(image)
                self._cache[image] = (arn, time.monotonic())
        return arn

    def _find_or_register(self, image: str) -> str:
        base = self._base()
        families = candidate_families(self.base_family, image)
        for family in families:
            existing = self._describe(family)
            if existing is None:
                return self._register(family, image, base=base)
            if self._image_of(existing) == image:
                if inherited(existing, self.container) == inherited(with_entrypoint(base, self.container), self.container):
                    return existing["taskDefinitionArn"]
                log.info("%s no longer matches %s; registering a new revision", existing["taskDefinitionArn"], self.base_family)
                return self._register(family, image, base=base)
        # Both names hold other images (a hash collision on top of a name collision): make a new revision.
        return self._register(families[1], image, base=base)

    def _base(self) -> dict:
        base = self._describe(self.base_family)
        if base is None:
            raise UpstreamError(
                f"the base task definition {self.base_family} does not exist; check MYCLI_TASK_DEFINITION and that the stack deployed"
            )
        return base

    def _describe(self, family: str) -> dict | None:
        """The latest ACTIVE revision of `family`, or None when there is none."""
        from botocore.exceptions import ClientError

        with aws_errors("ECS DescribeTaskDefinition", "the stack's task definition and the orchestrator's role"):
            try:
                return self.clients.ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
            except ClientError as exc:
                if error_code(exc) == "ClientException" and "unable to describe" in str(exc).lower():
                    return None
                raise

    def _image_of(self, definition: dict) -> str | None:
        for container in definition.get("containerDefinitions", []):
            if container.get("name") == self.container:
                return container.get("image")
        return None

    def one_off(self, source: str, commands: dict[str, list[str]]) -> str:
        """A revision of `{base}-oneoff` copied from `source` with `commands` (container →
        command) built in, for scripts too large for RunTask's overrides. Retire it once the
        task has started."""
        definition = self._describe(source)
        if definition is None:
            raise UpstreamError(f"task definition {source} disappeared; try again")
        return self._register(f"{self.base_family}-oneoff", self._image_of(definition) or "", commands=commands, base=definition)

    def retire(self, arn: str) -> None:
        """Deregister and delete a one-off revision; a running task keeps it until it stops."""
        try:
            with aws_errors("ECS DeregisterTaskDefinition", "the orchestrator's role"):
                self.clients.ecs.deregister_task_definition(taskDefinition=arn)
                self.clients.ecs.delete_task_definitions(taskDefinitions=[arn])
        except ApiError as exc:  # a leftover revision costs nothing; `mycli destroy` removes it
            log.warning("could not retire %s: %s", arn, exc.message)

    def _register(self, family: str, image: str, commands: dict[str, list[str]] | None = None,
                  base: dict | None = None) -> str:
        base = base or self._base()
        params = task_fields(base)
        containers = []
        for container in base.get("containerDefinitions", []):
            container = dict(container)
            if container.get("name") == self.container:
                container["image"] = image
                container["entryPoint"] = EXECUTOR_ENTRYPOINT
            if commands and container.get("name") in commands:
                container["command"] = commands[container["name"]]
            containers.append(container)
        tags = [{"key": "ManagedBy", "value": "mycli"}, {"key": "Image", "value": sanitize(image)},
                {"key": "DerivedFrom", "value": base.get("taskDefinitionArn", self.base_family).rsplit("/", 1)[-1]}]
        with aws_errors("ECS RegisterTaskDefinition", "the orchestrator's role (ecs:RegisterTaskDefinition, iam:PassRole)"):
            answer = self.clients.ecs.register_task_definition(
                family=family, containerDefinitions=containers, tags=tags, **params
            )
        return answer["taskDefinition"]["taskDefinitionArn"]


def task_fields(definition: dict) -> dict:
    """The task-level fields a copy registers: the base's, with Fargate's defaults where it has none."""
    fields = {key: definition[key] for key in _COPIED if definition.get(key)}
    fields.setdefault("networkMode", "awsvpc")
    fields.setdefault("requiresCompatibilities", ["FARGATE"])
    fields.setdefault("cpu", "256")
    fields.setdefault("memory", "512")
    return fields


def with_entrypoint(definition: dict, container: str) -> dict:
    """`definition` as a copy of it is registered: the executor with EXECUTOR_ENTRYPOINT (a base
    from an older template has none; a copy made from it before then is replaced)."""
    containers = [{**c, "entryPoint": EXECUTOR_ENTRYPOINT} if c.get("name") == container else c
                  for c in definition.get("containerDefinitions", [])]
    return {**definition, "containerDefinitions": containers}


def inherited(definition: dict, container: str) -> str:
    """What a copy takes from the base, as canonical JSON: the copied task-level fields and the
    container definitions, without the executor's image (the copy's own)."""
    fields = task_fields(definition)
    containers = [
        {k: v for k, v in c.items() if not (c.get("name") == container and k == "image")}
        for c in definition.get("containerDefinitions", [])
    ]
    return json.dumps({"task": fields, "containers": containers}, sort_keys=True, default=str)
