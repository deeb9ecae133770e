"""API key authentication: bcrypt against one or more hashes, remembered once verified.

Several hashes (comma or newline separated in API_KEY_HASH) let an operator rotate a key: add
the new hash, move clients over, drop the old one. A key that verified once is remembered by
its SHA-256 so warm requests skip bcrypt's deliberate ~60 ms; a wrong key always pays the full
bcrypt cost for every hash, so its response time says nothing about how close it was.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading

import bcrypt

from .errors import ServerMisconfigured, Unauthorized

KEY_PREFIX = "sk_live_"
_BCRYPT_HASH_RE = re.compile(rb"^\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}\Z")
BCRYPT_MAX_BYTES = 72


def generate_api_key() -> str:
    """A new API key: `sk_live_` and 64 hex characters (32 random bytes)."""
    return KEY_PREFIX + secrets.token_hex(32)


def hash_api_key(key: str, rounds: int = 10) -> str:
    return bcrypt.hashpw(key.encode(), bcrypt.gensalt(rounds)).decode()


def parse_hashes(raw: str | None) -> tuple[bytes, ...]:
    parts = (raw or "").replace("\n", ",").split(",")
    return tuple(p.strip().encode() for p in parts if p.strip())


class Authenticator:
    """Checks X-API-Key values against a fixed set of bcrypt hashes."""

    def __init__(self, hashes: tuple[bytes, ...]):
        if not hashes:
            raise ServerMisconfigured("server misconfigured: no API key hash is set (API_KEY_HASH)")
        if not any(_BCRYPT_HASH_RE.match(h) for h in hashes):
            raise ServerMisconfigured("server misconfigured: API_KEY_HASH holds no valid bcrypt hash")
        self._hashes = hashes
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def check(self, key: str | None) -> None:
        """Return if `key` is valid, else raise Unauthorized."""
        if not key:
            raise Unauthorized()
        raw = key.encode("utf-8", "surrogatepass")
        digest = hashlib.sha256(raw).digest()
        if digest in self._verified:
            return
        if len(raw) > BCRYPT_MAX_BYTES:
            raise Unauthorized()
        matched = False
        for stored in self._hashes:  # no early exit: time does not depend on which hash matched
            try:
                matched |= bcrypt.checkpw(raw, stored)
            except ValueError:
                continue  # a malformed stored hash never matches
        if not matched:
            raise Unauthorized()
        with self._lock:
            self._verified.add(digest)
