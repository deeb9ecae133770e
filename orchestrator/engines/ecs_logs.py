"""A run's log on AWS: one CloudWatch stream per container (`{prefix}/{container}/{task-id}`,
the awslogs driver's naming), read in the containers' order — fetch, executor, publish — as
one log.

The logs token is `{stream index}:{CloudWatch forward token}`. A stream is read to its end (the
token coming back unchanged); the reader moves to the next stream only once that container has
stopped (the next one starts only after it, by dependsOn), so lines come in the order they were
printed. Runs from before the task had several containers have a single stream; their tokens
(plain CloudWatch tokens) still page it.
"""

from __future__ import annotations

import re

from ..errors import BadRequest
from .ecs_aws import Clients, aws_errors, error_code

MAX_EMPTY_PAGES = 20
_CHECK_LOGS = "the log group (MYCLI_LOG_GROUP) and the orchestrator's logs:GetLogEvents permission"
_TOKEN = re.compile(r"^([0-9]):(.*)\Z", re.S)


def split_token(token: str | None) -> tuple[int, str | None]:
    if not token:
        return 0, None
    match = _TOKEN.match(token)
    if match is None:
        return 0, token  # a plain CloudWatch token: a single-stream run's
    return int(match.group(1)), match.group(2) or None


def join_token(index: int, token: str | None) -> str:
    return f"{index}:{token or ''}"


def read_stream(clients: Clients, log_group: str, stream: str, token: str | None,
                limit: int) -> tuple[list[tuple[int, str]], str | None, bool]:
    """One page of events after `token`: (events, next token, at the end). Empty pages with a
    new token are skipped (a gap in time); the end of the stream is the token coming back
    unchanged. A stream that does not exist yet (the container has not started) is an empty
    page at its end."""
    from botocore.exceptions import ClientError

    # startFromHead on every page: with a nextForwardToken but without it, CloudWatch pages
    # from the tail and lines go missing (GetLogEvents API reference).
    params = {"logGroupName": log_group, "logStreamName": stream, "limit": limit, "startFromHead": True}
    for _ in range(MAX_EMPTY_PAGES):
        if token:
            params["nextToken"] = token
        with aws_errors("CloudWatch Logs GetLogEvents", _CHECK_LOGS):
            try:
                answer = clients.logs.get_log_events(**params)
            except ClientError as exc:
                if error_code(exc) == "ResourceNotFoundException":
                    return [], token, True
                if error_code(exc) == "InvalidParameterException" and token:
                    raise BadRequest("next_token is not a token a previous logs call returned (or it expired)") from None
                raise
        events = [(int(e["timestamp"]), e["message"].rstrip("\n")) for e in answer.get("events", [])]
        next_token = answer.get("nextForwardToken") or token
        if events or next_token == token:
            return events, next_token, not events
        token = next_token
    return [], token, False


def read_log(clients: Clients, log_group: str, streams: list[str], finished: list[bool], token: str | None,
             limit: int) -> tuple[list[tuple[int, str]], str, bool]:
    """A page of the run's log across its streams: (events, next token, at the very end).
    `finished[i]`: container i has stopped, so nothing more comes in stream i. A page goes on
    into the next stream once a finished one is read to its end, up to `limit` events."""
    index, cw_token = split_token(token)
    index = min(index, len(streams) - 1)
    events: list[tuple[int, str]] = []
    while True:
        page, cw_token, at_end = read_stream(clients, log_group, streams[index], cw_token, limit - len(events))
        events += page
        if page and len(events) < limit:
            continue  # read this stream to its end first
        last = index == len(streams) - 1
        if len(events) >= limit or not at_end or not finished[index] or last:
            return events, join_token(index, cw_token), at_end and finished[index] and last
        index, cw_token = index + 1, None
