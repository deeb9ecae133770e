"""API key authentication: bcrypt hashes, rotation, the verified-key cache, odd keys."""

from __future__ import annotations

import re

import bcrypt
import pytest

from orchestrator.auth import Authenticator, generate_api_key, hash_api_key, parse_hashes
from orchestrator.errors import ServerMisconfigured, Unauthorized

OLD, NEW = generate_api_key(), generate_api_key()


def cheap_hash(key: str | bytes) -> bytes:
    raw = key.encode() if isinstance(key, str) else key
    return bcrypt.hashpw(raw, bcrypt.gensalt(4))


def accepts(auth: Authenticator, key) -> bool:
    try:
        auth.check(key)
        return True
    except Unauthorized as exc:
        assert exc.status == 401 and exc.message == "unauthorized"
        return False


def test_generated_key_format_and_hash():
    assert re.fullmatch(r"sk_live_[0-9a-f]{64}", OLD) and OLD != NEW
    stored = hash_api_key(OLD, rounds=4)
    assert bcrypt.checkpw(OLD.encode(), stored.encode())
    assert OLD not in stored


def test_valid_and_invalid_keys():
    auth = Authenticator((cheap_hash(OLD),))
    assert accepts(auth, OLD)
    assert accepts(auth, OLD)  # again, now from the verified cache
    for wrong in (NEW, None, "", OLD[:-1], OLD + "0", OLD.upper(), " " + OLD):
        assert not accepts(auth, wrong), wrong


@pytest.mark.parametrize("separator", [",", "\n", " , ", "\r\n", ",\n,"])
def test_several_hashes_let_a_key_rotate(separator):
    raw = separator.join([cheap_hash(OLD).decode(), cheap_hash(NEW).decode()]) + "\n"
    auth = Authenticator(parse_hashes(raw))
    assert accepts(auth, OLD) and accepts(auth, NEW)
    assert not accepts(auth, generate_api_key())


def test_dropping_the_old_hash_refuses_the_old_key():
    auth = Authenticator(parse_hashes(cheap_hash(NEW).decode()))
    assert accepts(auth, NEW) and not accepts(auth, OLD)


def test_key_longer_than_bcrypt_limit_is_refused_even_if_its_prefix_matches():
    key72 = "k" * 72
    auth = Authenticator((cheap_hash(key72),))
    assert accepts(auth, key72)
    assert not accepts(auth, key72 + "x")  # bcrypt would see only the first 72 bytes
    assert not accepts(Authenticator((cheap_hash(key72),)), key72 + "x")  # also when nothing is cached


def test_odd_keys_are_refused_not_crashed():
    auth = Authenticator((cheap_hash(OLD),))
    for odd in ("a\x00b", "\ud800", "é" * 40, "ключ", "\x00" * 100, "x" * 10000):
        assert not accepts(auth, odd)


def test_a_non_ascii_key_can_be_valid():
    key = "clé-✓"
    assert accepts(Authenticator((cheap_hash(key),)), key)


def test_malformed_stored_hash_is_skipped():
    auth = Authenticator(parse_hashes("not-a-bcrypt-hash," + cheap_hash(OLD).decode() + ",$2b$04$short"))
    assert accepts(auth, OLD)



def test_only_malformed_hashes_is_a_server_misconfiguration():
    with pytest.raises(ServerMisconfigured):
        Authenticator(parse_hashes("not-a-bcrypt-hash,$2b$04$short"))


@pytest.mark.parametrize("raw", [None, "", " ", ",\n,"])
def test_no_hash_is_a_server_misconfiguration(raw):
    with pytest.raises(ServerMisconfigured):
        Authenticator(parse_hashes(raw))
