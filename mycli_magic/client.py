"""The API client: `POST /execute` with an action, over the standard library's urllib.

Idempotent calls (status, logs, list, stop) are retried with backoff on connection errors,
429 and 5xx; exec never is, so a command is never silently started twice. Every failure is a
typed MycliError whose message says what to do.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Callable, Mapping

from . import __version__, config
from .errors import ApiRequestError, ConnectionFailed, UsageError
from .safe_text import escape_controls

RETRY_DELAYS = (0.2, 0.5, 1.0, 2.0)
_EXECUTION_ID_RE = re.compile(r"^[0-9a-f]{12}$")


def ref_fields(ref: str) -> dict:
    """An execution ID or a task ARN, as the API's `execution_id` / `task_arn` field."""
    ref = ref.strip()
    if _EXECUTION_ID_RE.match(ref.lower()):  # IDs are lower-case hex; one typed or pasted in capitals is the same ID
        return {"execution_id": ref.lower()}
    if ":" not in ref and "/" not in ref:
        raise UsageError(f"{ref!r} is neither an execution ID (12 hex characters, from mycli exec or mycli list) nor a task ARN")
    return {"task_arn": ref}


class ApiClient:
    def __init__(self, endpoint: config.Endpoint, timeout: float = 30.0, debug: bool = False):
        self.endpoint = endpoint
        self.timeout = timeout
        self.debug = debug

    # actions ---------------------------------------------------------------------------------

    def exec(self, payload: dict) -> dict:
        return self.call({"action": "exec", **payload}, idempotent=bool(payload.get("dry_run")))

    def status(self, ref: str) -> dict:
        return self.call({"action": "status", **ref_fields(ref)})

    def logs(self, ref: str, next_token: str | None = None, wait_seconds: float = 0, limit: int | None = None,
             text: bool = True) -> dict:
        """A page of log events; `text=False` skips the preformatted `logs` text (half the bytes)."""
        payload = {"action": "logs", **ref_fields(ref)}
        if not text:
            payload["text"] = False
        if next_token:
            payload["next_token"] = next_token
        if wait_seconds:
            payload["wait_seconds"] = wait_seconds
        if limit:
            payload["limit"] = limit
        return self.call(payload, timeout=self.timeout + wait_seconds)

    def stop(self, ref: str) -> dict:
        return self.call({"action": "stop", **ref_fields(ref)})

    def list(self, limit: int = 20) -> dict:
        return self.call({"action": "list", "limit": limit})

    def prune(self, older_than_days: float) -> dict:
        """Delete finished executions created more than `older_than_days` ago (embedded engine)."""
        return self.call({"action": "prune", "older_than_days": older_than_days})

    # transport -------------------------------------------------------------------------------

    def call(self, payload: dict, idempotent: bool = True, timeout: float | None = None) -> dict:
        data = json.dumps(payload).encode()
        delays = RETRY_DELAYS if idempotent else ()
        attempt = 0
        while True:
            try:
                return self._post(data, timeout or self.timeout)
            except (ConnectionFailed, ApiRequestError) as exc:
                retryable = isinstance(exc, ConnectionFailed) or exc.status == 429 or exc.status >= 500
                if not retryable or attempt >= len(delays):
                    raise
                if self.debug:
                    print(f"mycli: retrying after: {exc}", file=sys.stderr)
                time.sleep(delays[attempt])
                attempt += 1

    def _post(self, data: bytes, timeout: float) -> dict:
        headers = {"Content-Type": "application/json", "User-Agent": f"mycli/{__version__}"}
        if self.endpoint.api_key:
            headers["X-API-Key"] = self.endpoint.api_key
        request = urllib.request.Request(self.endpoint.url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                return _decode(resp.read(), resp.status, self.endpoint.url)
        except urllib.error.HTTPError as exc:
            body = exc.read()
            message = escape_controls(_error_message(body) or f"HTTP {exc.code} {exc.reason}")  # the server's words
            if exc.code == 401:
                where = ("MYCLI_API_KEY" if os.environ.get("MYCLI_API_KEY")
                         else f"api_key in {config.config_path()} or run: mycli configure")
                message = f"unauthorized: {self.endpoint.url} rejected the API key; check {where}"
            elif exc.code == 403 and not _error_message(body):
                message = f"forbidden by {self.endpoint.url}: is the endpoint URL right (it should end in /execute)?"
            raise ApiRequestError(message, exc.code) from None
        except http.client.HTTPException as exc:
            raise ConnectionFailed(
                f"{self.endpoint.url} did not answer like an HTTP server ({type(exc).__name__}); is it a mycli endpoint?"
            ) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(f"cannot reach {self.endpoint.url}: {reason}; {self._unreachable_hint()}") from None

    def _unreachable_hint(self) -> str:
        if self.endpoint.source == "embedded":
            return "the embedded engine may have stopped; run the command again to restart it"
        host = urllib.parse.urlsplit(self.endpoint.url).hostname or ""
        if host in ("localhost", "::1") or host.startswith("127."):
            return "is the server running? (mycli server)"
        return "check api_endpoint (mycli configure) and your network, or whether the stack still exists"


def _decode(raw: bytes, status: int, url: str) -> dict:
    try:
        data = json.loads(raw)
    except ValueError:
        raise ApiRequestError(f"{url} answered HTTP {status} with something that is not JSON; is it a mycli endpoint?", 502) from None
    if not isinstance(data, dict):
        raise ApiRequestError(f"{url} answered with unexpected JSON; is it a mycli endpoint?", 502)
    return data


def _error_message(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        return data["error"]
    if isinstance(data, dict) and isinstance(data.get("message"), str):  # API Gateway's own errors
        return data["message"]
    return None


def connect(
    profile: str | None = None,
    environ: Mapping[str, str] = os.environ,
    announce: Callable[[str], None] | None = None,
    debug: bool = False,
) -> ApiClient:
    """A client for the configured endpoint, or for the embedded engine when none is configured."""
    endpoint = config.configured_endpoint(profile, environ)
    if endpoint is None:
        from .embedded import ensure_embedded

        endpoint = ensure_embedded(environ, announce=announce)
    return ApiClient(endpoint, debug=debug)
