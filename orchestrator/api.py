"""The API: an API Gateway REST proxy event in, a proxy response out.

This is the one place where the orchestrator turns typed errors into HTTP answers. The Lambda
handler and the local HTTP server both call `App.handle`; neither knows the actions.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from typing import Callable

from .auth import Authenticator
from .engine import Engine
from .errors import ApiError, BadRequest, PayloadTooLarge
from .units import MIB
from .validation import ExecRequest, ListRequest, LogsRequest, PruneRequest, Ref, UploadRequest, parse_request

log = logging.getLogger("mycli.api")

MAX_BODY_BYTES = MIB


def header(event: dict, name: str) -> str | None:
    """A request header by case-insensitive name, from `headers` or `multiValueHeaders`."""
    wanted = name.lower()
    for key, value in (event.get("headers") or {}).items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(value, str):
            return value
    for key, values in (event.get("multiValueHeaders") or {}).items():
        if isinstance(key, str) and key.lower() == wanted and isinstance(values, list) and values:
            return values[0] if isinstance(values[0], str) else None
    return None


def response(status: int, payload: dict) -> dict:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(payload, ensure_ascii=False),
    }


class App:
    """Auth, parse, dispatch. `authenticator` is a factory so a misconfiguration is a clean error."""

    def __init__(self, engine: Engine, authenticator: Callable[[], Authenticator]):
        self.engine = engine
        self._authenticator_factory = authenticator
        self._authenticator: Authenticator | None = None

    def authenticate(self, event: dict) -> None:
        """Raise Unauthorized unless the event carries a valid X-API-Key; reads no body."""
        if self._authenticator is None:
            self._authenticator = self._authenticator_factory()
        self._authenticator.check(header(event, "x-api-key"))

    def handle(self, event: dict) -> dict:
        try:
            self.authenticate(event)
            return response(200, self._dispatch(*parse_request(_body(event))))
        except ApiError as exc:
            return response(exc.status, {"error": exc.message})
        except Exception:
            incident = secrets.token_hex(4)
            log.exception("internal error %s", incident)
            return response(500, {"error": f"internal error (incident {incident}); see the server log"})

    def _dispatch(self, action: str, request: object) -> dict:
        engine = self.engine
        if action == "exec":
            assert isinstance(request, ExecRequest)
            if request.dry_run:
                script, runtime = engine.script_for(request)
                return {"dry_run": True, "script": script, "engine": engine.name, "runtime": runtime}
            execution = engine.start(request)
            body = execution.to_json()
            body["status"] = execution.status
            return body
        if action == "status":
            assert isinstance(request, Ref)
            return engine.get(request).to_json()
        if action == "logs":
            assert isinstance(request, LogsRequest)
            return engine.logs(request).to_json(text=request.text)
        if action == "stop":
            assert isinstance(request, Ref)
            return engine.stop(request).to_json()
        if action == "upload":
            assert isinstance(request, UploadRequest)
            return engine.create_upload(request)
        if action == "artifacts":
            assert isinstance(request, Ref)
            return engine.artifacts(request)
        if action == "prune":
            assert isinstance(request, PruneRequest)
            return {"pruned": engine.prune(request), "older_than_days": request.older_than_days}
        assert isinstance(request, ListRequest)
        return {"executions": [e.to_json() for e in engine.list(request)]}


def _body(event: dict) -> object:
    raw = event.get("body")
    if raw is None or raw == "":
        raise BadRequest("body must be a JSON object with an action")
    if not isinstance(raw, str):
        raise BadRequest("body must be a JSON object with an action")
    if event.get("isBase64Encoded"):
        try:
            data = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is not valid base64") from None
    else:
        data = raw.encode("utf-8", "surrogatepass")
    if len(data) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body is larger than {MAX_BODY_BYTES // 1024} KiB")
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise BadRequest("body is not valid JSON") from None
