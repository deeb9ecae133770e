"""Reliability of the HTTP front and the API against hostile input: bodies nested to the edge of
what JSON decoding accepts, and floods of connections that never finish a request."""

from __future__ import annotations

import json
import resource
import socket
import struct
import urllib.request

import pytest

from orchestrator import handler as lambda_handler
from orchestrator.auth import generate_api_key, hash_api_key
from tests.support.server import start_server, stop_server

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


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            pytest.skip(f"this machine allows {hard} open files; the flood needs {needed}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _half_open(url: str, count: int) -> list[socket.socket]:
    """`count` connections that each send half a request header and then say nothing."""
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    conns = []
    for _ in range(count):
        try:
            conn = socket.create_connection((host, int(port)), timeout=10)
            conn.sendall(b"GET /health HTTP/1.1\r\nHost: flood\r\nX-Half: ")
        except OSError:  # a connection the server shed (or refused at its limit) is part of the test
            continue
        conns.append(conn)
    return conns


def _health(url: str) -> int:
    base = url.rsplit("/", 1)[0]
    try:
        with urllib.request.urlopen(f"{base}/health", timeout=10) as resp:
            return resp.status
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.mark.parametrize("count", [4000])
def test_a_flood_of_half_open_connections_does_not_stall_the_server(tmp_path, count):
    _raise_fd_limit(count + 1000)
    home = tmp_path / "home"
    home.mkdir()
    server = start_server(home)
    conns = []
    try:
        conns = _half_open(server.url, count)
        answers = [_health(server.url) for _ in range(20)]
        assert answers == [200] * 20, answers
        # and the API still works while they hang there
        assert server.run("echo through the flood")["exit_code"] == 0
        for index, conn in enumerate(conns):  # hang up: half with a reset, half with a close
            if index % 2:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
        conns = []
        answers = [_health(server.url) for _ in range(20)]
        assert answers == [200] * 20, answers
    finally:
        for conn in conns:
            conn.close()
        stop_server(server)
    log = (home / "server-test.log").read_text()
    assert "Traceback" not in log, log[-3000:]
    noisy = [line for line in log.splitlines() if "mycli.server" in line]
    assert len(noisy) <= 6, "\n".join(noisy[:20])
