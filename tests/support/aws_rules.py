"""Rules AWS enforces and moto does not, enforced inside the moto server the tests run.

moto accepts what AWS refuses (no name limits, no overrides limit, no Fargate sizes), so a defect
that only a real account would hit passes every test. Each rule here is a patch on moto's backend,
in the process that hosts the server, so it applies to every client alike: pytest itself, `mycli
server --engine aws`, the CLI and the nbval kernels (separate processes that a botocore hook in
pytest would miss). Each rule answers with the error code AWS uses and names its source; the list,
with the documents, is in docs/deployment.md ("AWS rules the tests enforce").

Rules stay small: they check what AWS documents, never guess at more.
"""

from __future__ import annotations

import inspect
import json

OVERRIDES_LIMIT = 8192
_APPLIED = False

DOCS = {
    "GetLogEvents": "https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_GetLogEvents.html",
    "RunTask": "https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_RunTask.html",
}

def _arguments(function, *args, **kwargs) -> dict:
    """A backend call's arguments by name, however moto's responses pass them."""
    bound = inspect.signature(function).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments


def enforce_aws_rules() -> None:
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    _get_log_events_needs_start_from_head()
    _run_task_checks()


def _get_log_events_needs_start_from_head() -> None:
    """GetLogEvents: "If you are using a previous nextForwardToken value as the nextToken in this
    operation, you must specify true for startFromHead" (GetLogEvents). AWS does not refuse: it
    returns the newest events instead, and a follower silently loses lines; the stand-in refuses,
    so the defect fails a test instead of going unseen."""
    from moto.logs.exceptions import InvalidParameterException
    from moto.logs.models import LogsBackend

    original = LogsBackend.get_log_events

    def get_log_events(self, *args, **kwargs):
        call = _arguments(original, self, *args, **kwargs)
        if call.get("next_token") and not call.get("start_from_head"):
            raise InvalidParameterException(
                "mycli AWS rule: nextToken sent without startFromHead=true; AWS would page from the "
                f"tail and lose lines (see {DOCS['GetLogEvents']})")
        return original(self, *args, **kwargs)

    LogsBackend.get_log_events = get_log_events


def _run_task_checks() -> None:
    """RunTask: "A total of 8192 characters are allowed for overrides. This limit includes the
    JSON formatting characters of the override structure" — measured on the JSON as botocore
    sends it (json.dumps: ", " separators, non-ASCII as \\uXXXX escapes) (RunTask)."""
    from moto.ecs.exceptions import InvalidParameterException
    from moto.ecs.models import EC2ContainerServiceBackend

    original = EC2ContainerServiceBackend.run_task

    def run_task(self, *args, **kwargs):
        call = _arguments(original, self, *args, **kwargs)
        overrides = call["overrides"] or {}
        size = len(json.dumps(overrides))
        if size > OVERRIDES_LIMIT:
            raise InvalidParameterException(
                f"Container Overrides length must be at most {OVERRIDES_LIMIT} (these are {size} characters as sent; "
                f"mycli AWS rule, see {DOCS['RunTask']})")
        return original(self, *args, **kwargs)

    EC2ContainerServiceBackend.run_task = run_task
