"""Reliability of the HTTP front and the API against hostile input: bodies nested to the edge of
what JSON decoding accepts, and floods of connections that never finish a request."""

from __future__ import annotations

import json

import pytest

from orchestrator import handler as lambda_handler
from orchestrator.auth import generate_api_key, hash_api_key

EID = "0123456789ab"


def _nested(depth: int, leaf: str, kind: str) -> str:
    """A status request whose extra field `x` holds `leaf` `depth` levels down."""
    if kind == "list":
        inner = "[" * depth + leaf + "]" * depth
    else:
        inner = '{"a":' * depth + leaf + "}" * depth
    return '{"action":"status","execution_id":"%s","x":%s}' % (EID, inner)


BAD_LEAVES = {"NUL": '"\\u0000"', "lone surrogate": '"\\ud800"'}


@pytest.fixture
def lambda_env(tmp_path, monkeypatch):
    """The Lambda entry point itself, on the local engine: its shallow stack is where a deep body
    reaches furthest."""
    key = generate_api_key()
    monkeypatch.setenv("API_KEY_HASH", hash_api_key(key))
    monkeypatch.setenv("MYCLI_ENGINE", "local")
    monkeypatch.setenv("MYCLI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "host")
    monkeypatch.setattr(lambda_handler, "_app", None)
    yield key
    if lambda_handler._app is not None:
        lambda_handler._app.engine.shutdown()


@pytest.mark.parametrize("leaf", BAD_LEAVES)
@pytest.mark.parametrize("kind", ["list", "object"])
def test_deeply_nested_bad_string_is_a_400_at_every_depth(lambda_env, leaf, kind):
    for depth in [1, 2, 10, 100, 500, *range(900, 1001)]:
        event = {"httpMethod": "POST", "path": "/execute", "headers": {"X-API-Key": lambda_env},
                 "body": _nested(depth, BAD_LEAVES[leaf], kind)}
        reply = lambda_handler.handler(event, None)
        assert reply["statusCode"] == 400, (depth, reply)
        message = json.loads(reply["body"])["error"]
        assert message.startswith("invalid request: ") and len(message) < 300, (depth, message)


def test_deeply_nested_bad_string_over_http_is_a_400(server):
    for depth in range(900, 1001, 4):
        status, body = server.call(_nested(depth, BAD_LEAVES["NUL"], "list"))
        assert status == 400, (depth, body)
