"""The local HTTP front at the socket level: what it decides from the headers alone, keep-alive,
and the paths it serves."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import pytest


def raw_request(server, head: str, body: bytes = b"", timeout: float = 10) -> tuple[int, dict]:
    """Send `head` (and maybe part of a body) and read one response, without closing our side."""
    parts = urlsplit(server.url)
    with socket.create_connection((parts.hostname, parts.port), timeout=timeout) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        status = int(head_bytes.split()[1])
        length = next(int(line.split(b":")[1]) for line in head_bytes.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status, json.loads(rest[:length])


def post_head(key: str | None, length: int, extra: str = "") -> str:
    lines = ["POST /execute HTTP/1.1", "Host: localhost", "Content-Type: application/json",
             f"Content-Length: {length}"]
    if key is not None:
        lines.append(f"X-API-Key: {key}")
    return "\r\n".join(lines) + "\r\n" + extra


def test_bad_key_is_401_before_the_body_arrives(server):
    # 10 MiB announced, not one byte sent: the answer must come from the headers alone
    assert raw_request(server, post_head("sk_live_wrong", 10 * 1024 * 1024)) == (401, {"error": "unauthorized"})
    assert raw_request(server, post_head(None, 10 * 1024 * 1024)) == (401, {"error": "unauthorized"})


def test_too_large_is_413_before_the_body_arrives(server):
    status, body = raw_request(server, post_head(server.key, 1024 * 1024 + 1))
    assert status == 413 and "larger" in body["error"]


def test_invalid_json_with_bad_key_is_401(server):
    assert server.call("{not json", key="sk_live_" + "0" * 64) == (401, {"error": "unauthorized"})


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe{}", b"[]", b"{\"action\": \"list\"}\x00"])
def test_bad_bodies_are_400(server, body):
    status, resp = server.call(body)
    assert status == 400 and resp["error"].startswith("invalid request: ")


def test_header_case_over_http(server):
    for name in ("x-api-key", "X-API-KEY", "X-Api-Key"):
        assert server.call({"action": "list", "limit": 1}, key=None, headers={name: server.key})[0] == 200


def test_keep_alive_serves_several_requests_on_one_connection(server):
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        for _ in range(3):
            conn.request("POST", "/execute", body=json.dumps({"action": "list", "limit": 1}),
                         headers={"X-API-Key": server.key, "Content-Type": "application/json"})
            resp = conn.getresponse()
            assert resp.status == 200 and "executions" in json.loads(resp.read())
        conn.request("GET", "/health")
        resp = conn.getresponse()
        assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
    finally:
        conn.close()


@pytest.mark.parametrize("method, path", [("GET", "/execute"), ("POST", "/nope"), ("GET", "/")])
def test_unknown_paths_are_json_404(server, method, path):
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request(method, path, body=b"{}" if method == "POST" else None, headers={"X-API-Key": server.key})
        resp = conn.getresponse()
        assert resp.status == 404 and "error" in json.loads(resp.read())
    finally:
        conn.close()


def test_stage_prefixed_path_works_like_api_gateway(server):
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", "/prod/execute", body=json.dumps({"action": "list", "limit": 1}),
                     headers={"X-API-Key": server.key})
        assert conn.getresponse().status == 200
    finally:
        conn.close()


@pytest.mark.parametrize("extra", ["Transfer-Encoding: chunked\r\n", "Content-Length: -5\r\n", "Content-Length: x\r\n"])
def test_unusable_body_framing_is_400(server, extra):
    head = ("POST /execute HTTP/1.1\r\nHost: localhost\r\n" + f"X-API-Key: {server.key}\r\n" + extra)
    body = b"1b\r\n{\"action\":\"list\",\"limit\":1}\r\n0\r\n\r\n" if "chunked" in extra else b""
    status, resp = raw_request(server, head, body)
    assert status == 400 and resp["error"].startswith("invalid request: "), resp


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_get_a_json_405(server, method):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(server.url, data=b"{}", method=method)
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(req, timeout=10)
    assert caught.value.code == 405
    assert "method not allowed" in json.loads(caught.value.read())["error"]
