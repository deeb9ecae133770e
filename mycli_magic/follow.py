"""Following an execution's log until it stops: shared by `mycli logs -f`, `exec --wait`, the
magic and the widget panel.

Polling adapts: while lines flow the next page is asked for at once; when a page comes back
empty the follower long-polls (engines that support `wait_seconds` hold the request until a
line arrives) or, against an engine that answers at once, backs off from 0.1 s to 2 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from .client import ApiClient

LONG_POLL_SECONDS = 10.0
MIN_IDLE_SLEEP = 0.1
MAX_IDLE_SLEEP = 2.0


@dataclass
class FollowState:
    """What a follower knows so far; callers read it after (or while) iterating."""

    ref: str
    next_token: str | None = None
    status: str | None = None
    exit_code: int | None = None


def follow(
    client: ApiClient,
    ref: str,
    state: FollowState | None = None,
    max_idle_sleep: float = MAX_IDLE_SLEEP,
) -> Iterator[dict]:
    """Yield log pages (the API's logs response) until the execution is STOPPED and drained.

    Pass a `state` to resume from its `next_token` (re-attach without repeating lines). An
    engine whose last lines can trail the STOPPED state (CloudWatch) says `complete: false`
    until they are in; the follower keeps asking until then.
    `max_idle_sleep` caps the back-off against engines that do not long-poll (the magic's
    `poll_interval` setting).
    """
    state = state or FollowState(ref)
    idle_sleep = min(MIN_IDLE_SLEEP, max_idle_sleep)
    while True:
        asked = time.monotonic()
        page = client.logs(ref, next_token=state.next_token, wait_seconds=LONG_POLL_SECONDS, text=False)
        events = page.get("events") or []
        state.next_token = page.get("next_token") or state.next_token
        state.status = page.get("status", state.status)
        state.exit_code = page.get("exit_code", state.exit_code)
        if events:
            idle_sleep = min(MIN_IDLE_SLEEP, max_idle_sleep)
            yield page
            continue
        if state.status == "STOPPED" and page.get("complete", True):
            return
        if time.monotonic() - asked < LONG_POLL_SECONDS / 2:  # the engine did not hold the request
            time.sleep(idle_sleep)
            idle_sleep = min(idle_sleep * 1.5, max_idle_sleep)
