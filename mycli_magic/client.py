"""The API client: `POST /execute` with an action, over the standard library's urllib.

Idempotent calls (status, logs, list, stop) are retried with backoff on connection errors,
429 and 5xx; exec never is, so a command is never silently started twice. Every failure is a
typed MycliError whose message says what to do.

Files travel outside the JSON API: an upload is PUT and an artifact fetched with GET at the URL
the API hands out — a path on the local server, or a presigned S3 URL. The API key goes only
to the endpoint's own origin (scheme, host and port), never to S3 or anywhere else, and is
never carried along a redirect.
"""

from __future__ import annotations

import contextlib
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

    def upload(self, size: int, sha256: str, purpose: str) -> dict:
        """A place to PUT `size` bytes with `sha256`: {upload_id, url, method, headers, expires_at}.
        Retried as the reads are: a repeated request only leaves an unused upload behind."""
        return self.call({"action": "upload", "size": size, "sha256": sha256, "purpose": purpose})

    def artifacts(self, ref: str) -> dict:
        """{execution_id, artifacts: [{name, size, sha256, url}], complete, skipped, reason}; each
        `url` absolute (the local server gives a path on itself: `--json` shows one to fetch)."""
        answer = self.call({"action": "artifacts", **ref_fields(ref)})
        for artifact in answer.get("artifacts") or []:
            if isinstance(artifact, dict) and artifact.get("url"):
                artifact["url"] = urllib.parse.urljoin(self.endpoint.url, str(artifact["url"]))
        return answer

    # files -----------------------------------------------------------------------------------

    def put_file(self, ticket: dict, path: bytes | str | os.PathLike, size: int) -> None:
        """PUT the file at `path` (`size` bytes) where `upload` said, with its headers; bytes
        already in memory (the local-changes archive) go as they are, not through a temp file."""
        url = self.file_url(str(ticket.get("url") or ""))
        headers = {str(k): str(v) for k, v in (ticket.get("headers") or {}).items()}
        headers["Content-Length"] = str(size)
        headers.setdefault("Content-Type", "application/octet-stream")
        with contextlib.nullcontext(path) if isinstance(path, bytes) else open(path, "rb") as body:
            request = self._file_request(url, str(ticket.get("method") or "PUT"), headers, body)
            with self._open_file_url(request, "upload", timeout=max(self.timeout, 300.0)) as resp:
                resp.read()

    def open_file(self, url: str):
        """A streaming response for an artifact's `url` (the caller closes it)."""
        request = self._file_request(self.file_url(url), "GET", {}, None)
        return self._open_file_url(request, "download", timeout=max(self.timeout, 300.0))

    def file_url(self, url: str) -> str:
        """An absolute URL: a path the local server gave is resolved against the endpoint."""
        if not url:
            raise ApiRequestError(f"{self.endpoint.url} gave no URL for the file; is the engine up to date?", 502)
        absolute = urllib.parse.urljoin(self.endpoint.url, url)
        if urllib.parse.urlsplit(absolute).scheme not in ("http", "https"):
            raise ApiRequestError(f"{self.endpoint.url} gave a file URL that is not http(s): {escape_controls(url[:80])}", 502)
        return absolute

    def same_origin(self, url: str) -> bool:
        """True when `url` has the endpoint's scheme, host and port: only then may it see the key."""
        return _origin(url) == _origin(self.endpoint.url)

    def _file_request(self, url: str, method: str, headers: dict, body) -> urllib.request.Request:
        request = urllib.request.Request(url, data=body, headers={"User-Agent": f"mycli/{__version__}", **headers},
                                         method=method)
        if self.endpoint.api_key and self.same_origin(url):
            request.add_unredirected_header("X-API-Key", self.endpoint.api_key)  # never follows a redirect
        return request

    def _open_file_url(self, request: urllib.request.Request, what: str, timeout: float):
        scheme, host, port = _origin(request.full_url)
        where = f"{scheme}://{host}:{port}"  # the server, never the path (a presigned URL's query holds a signature)
        try:
            return urllib.request.urlopen(request, timeout=timeout)
        except urllib.error.HTTPError as exc:
            body = exc.read()
            detail = escape_controls(_error_message(body) or _s3_error(body) or f"HTTP {exc.code} {exc.reason}")
            if exc.code == 401 and self.same_origin(request.full_url):
                detail = "the server rejected the API key"
            elif exc.code == 403 and not self.same_origin(request.full_url):
                detail += " (a presigned URL lasts 15 minutes: run the command again for a fresh one)"
            raise ApiRequestError(f"{what} to {where} failed: {detail}", exc.code) from None
        except http.client.HTTPException as exc:
            raise ConnectionFailed(f"{what} to {where} failed: {type(exc).__name__}; try again") from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ConnectionFailed(f"{what} to {where} failed: {reason}; check your network and try again") from None

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
        request = urllib.request.Request(self.endpoint.url, data=data, headers=headers, method="POST")
        if self.endpoint.api_key:  # unredirected: a redirect (urllib follows 301-303) never takes the key along
            request.add_unredirected_header("X-API-Key", self.endpoint.api_key)
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
            cause = f"cannot reach {self.endpoint.url}: {reason}"
            raise ConnectionFailed(f"{cause}; {self._unreachable_hint()}", cause) from None

    def _unreachable_hint(self) -> str:
        if self.endpoint.source == "embedded":
            return "the embedded engine may have stopped; run the command again to restart it"
        host = urllib.parse.urlsplit(self.endpoint.url).hostname or ""
        if host in ("localhost", "::1") or host.startswith("127."):
            return "is the server running? (mycli server)"
        return "check api_endpoint (mycli configure) and your network, or whether the stack still exists"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is no number: matches nothing
        return (scheme, "", -1)
    return scheme, (parts.hostname or "").lower(), port


def _s3_error(body: bytes) -> str | None:
    """S3's XML error, as `Code: Message`."""
    match = re.search(rb"<Code>([^<]{1,100})</Code>(?:.*?<Message>([^<]{1,300})</Message>)?", body, re.S)
    if not match:
        return None
    code, message = (g.decode("utf-8", "replace") if g else "" for g in match.groups())
    return f"{code}: {message}" if message else code


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
