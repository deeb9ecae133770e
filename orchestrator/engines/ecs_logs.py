"""A run's log on AWS: one CloudWatch stream per container (`{prefix}/{container}/{task-id}`,
the awslogs driver's naming), read in the containers' order — fetch, executor, publish — as
one log.

The logs token holds each stream's CloudWatch forward token (`m|t0|t1|t2`). A stream is read to
its end (the token coming back unchanged); the reader goes on to the next stream only once that
container has stopped (the next one starts only after it, by dependsOn), so lines come in the
order they were printed. Runs from before the task had several containers have a single stream;
their tokens (plain CloudWatch tokens) still page it.
"""

from __future__ import annotations

from ..errors import BadRequest
from .ecs_aws import Clients, aws_errors, error_code

MAX_EMPTY_PAGES = 20
_CHECK_LOGS = "the log group (MYCLI_LOG_GROUP) and the orchestrator's logs:GetLogEvents permission"


def split_tokens(token: str | None, count: int) -> list[str | None]:
    """Each stream's CloudWatch token from the logs token (`m|t0|t1|t2`; a plain CloudWatch
    token is a single-stream run's)."""
    if not token:
        return [None] * count
    parts = token[2:].split("|") if token.startswith("m|") else [token]
    parts = (parts + [""] * count)[:count]
    return [part or None for part in parts]


def join_tokens(tokens: list[str | None]) -> str:
    return "m|" + "|".join(t or "" for t in tokens)


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
    `finished[i]`: container i has stopped, so its stream is read to its end and the page goes
    on into the next one. Every call reads each earlier stream again from its own token (one
    cheap call at its end), so a line the awslogs driver ships late is not lost."""
    tokens = split_tokens(token, len(streams))
    events: list[tuple[int, str]] = []
    for index, stream in enumerate(streams):
        while len(events) < limit:
            page, tokens[index], at_end = read_stream(clients, log_group, stream, tokens[index], limit - len(events))
            events += page
            if at_end:
                break
        if len(events) >= limit or not finished[index]:
            return events, join_tokens(tokens), False
    return events, join_tokens(tokens), True
