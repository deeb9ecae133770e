"""The Lambda entry point: `orchestrator.handler.handler(event, context)`.

The app (engine + authenticator) is built once per Lambda container from the environment and
reused by warm invocations, which is what makes the verified-key cache pay off.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .api import App
from .auth import Authenticator, parse_hashes

_app: App | None = None
_lock = threading.Lock()


def authenticator_from_env(environ=os.environ) -> Authenticator:
    return Authenticator(parse_hashes(environ.get("API_KEY_HASH")))


def engine_from_env(environ=os.environ):
    """The engine MYCLI_ENGINE names: 'ecs' (the default in Lambda) or 'local'."""
    name = environ.get("MYCLI_ENGINE") or ("ecs" if environ.get("AWS_LAMBDA_FUNCTION_NAME") else "local")
    if name == "ecs":
        from .engines.ecs import EcsEngine

        return EcsEngine.from_env(environ)
    from .engines.local import LocalEngine

    return LocalEngine(Path(environ.get("MYCLI_STATE_DIR") or "/tmp/mycli-state"), environ)


def handler(event: dict, context: object = None) -> dict:
    global _app
    if _app is None:
        with _lock:
            if _app is None:
                _app = App(engine_from_env(), authenticator_from_env)
    return _app.handle(event)
