"""Execution IDs: 12 hex characters, an 8-character Unix-time prefix and 4 random ones.

Short enough to type, time-ordered so they sort by creation, unpredictable through `secrets`.
Upload IDs ("up-" + 32 hex) are never typed, so they are all random: knowing one is what lets
an exec use the upload, and a guess must not find another client's.
"""

import re
import secrets
import time

EXECUTION_ID_RE = re.compile(r"^[0-9a-f]{12}\Z")
UPLOAD_ID_RE = re.compile(r"^up-[0-9a-f]{32}\Z")


def new_execution_id(now: float | None = None) -> str:
    """Return a fresh execution ID for the time `now` (default: the current time)."""
    stamp = int(time.time() if now is None else now) & 0xFFFFFFFF
    return f"{stamp:08x}{secrets.token_hex(2)}"


def is_execution_id(value: str) -> bool:
    return bool(EXECUTION_ID_RE.match(value))


def new_upload_id() -> str:
    """A fresh upload ID: "up-" and 32 random hex characters."""
    return f"up-{secrets.token_hex(16)}"


def is_upload_id(value: object) -> bool:
    return isinstance(value, str) and bool(UPLOAD_ID_RE.match(value))
