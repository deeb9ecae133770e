"""The API fed saved API Gateway REST proxy events (tests/fixtures/events/*.json).

The events go to orchestrator.api.App (and once to the Lambda entry point itself) with the
real local engine on a temp state dir, real bcrypt hashes and real processes.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import bcrypt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from orchestrator import handler as lambda_handler
from orchestrator.api import App
from orchestrator.auth import Authenticator, generate_api_key, parse_hashes
from orchestrator.engines.local import LocalEngine

EVENTS = Path(__file__).resolve().parents[1] / "fixtures" / "events"
KEY = generate_api_key()
ROTATED_KEY = generate_api_key()
HASHES = ",".join(bcrypt.hashpw(k.encode(), bcrypt.gensalt(4)).decode() for k in (KEY, ROTATED_KEY))

EXPECTED = {
    "exec_skip_git": 200, "exec_dry_run": 200, "list_lowercase_header": 200, "list_uppercase_header": 200,
    "list_base64": 200, "list_multivalue_headers_only": 200, "status_unknown": 404,
    "logs_unknown_task_arn": 404, "stop_unknown": 404, "no_key": 401, "wrong_key_invalid_json": 401,
    "invalid_json": 400, "empty_body": 400, "bad_base64": 400, "exec_injected_repo": 400,
}


def load_event(name: str, key: str = KEY) -> dict:
    return json.loads((EVENTS / f"{name}.json").read_text().replace("{{API_KEY}}", key))


def with_body(body: str | bytes | dict, key: str | None = KEY, b64: bool = False) -> dict:
    event = load_event("list_lowercase_header", key or "")
    if key is None:
        event["headers"].pop("x-api-key")
        event["multiValueHeaders"].pop("x-api-key")
    if isinstance(body, dict):
        body = json.dumps(body)
    if b64:
        body = base64.b64encode(body if isinstance(body, bytes) else body.encode()).decode()
    event["body"], event["isBase64Encoded"] = body, b64
    return event


@pytest.fixture(scope="module")
def app(tmp_path_factory) -> App:
    state = tmp_path_factory.mktemp("handler-state")
    engine = LocalEngine(state, {"PATH": "/usr/bin:/bin"}, runtime="host")
    yield App(engine, lambda: Authenticator(parse_hashes(HASHES)))
    engine.shutdown()


def call(app: App, event: dict) -> tuple[int, dict]:
    resp = app.handle(event)
    assert resp["headers"]["Content-Type"] == "application/json"
    body = json.loads(resp["body"])
    assert "Traceback" not in resp["body"]
    if resp["statusCode"] != 200:
        assert set(body) == {"error"} and isinstance(body["error"], str)
    return resp["statusCode"], body


def wait_stopped(app: App, execution_id: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = call(app, with_body({"action": "logs", "execution_id": execution_id, "wait_seconds": 2,
                                            "next_token": "999999999"}))
        assert status == 200, body
        if body["status"] == "STOPPED":
            return call(app, with_body({"action": "status", "execution_id": execution_id}))[1]
    raise AssertionError(f"{execution_id} did not stop")


def test_every_fixture_gets_its_status(app):
    assert sorted(p.stem for p in EVENTS.glob("*.json")) == sorted(EXPECTED)
    for name, expected in EXPECTED.items():
        status, body = call(app, load_event(name))
        assert status == expected, (name, body)
        if expected == 401:
            assert body == {"error": "unauthorized"}
        if expected == 400:
            assert body["error"].startswith("invalid request: ")


def test_exec_fixture_runs_and_reports(app):
    status, started = call(app, load_event("exec_skip_git"))
    assert status == 200
    assert started["status"] in ("PENDING", "RUNNING") and len(started["execution_id"]) == 12
    for field in ("task_arn", "log_stream", "created_at", "engine", "runtime"):
        assert started[field], field
    assert (started["engine"], started["runtime"], started["env_keys"]) == ("local", "host", ["GREETING"])
    final = wait_stopped(app, started["execution_id"])
    assert (final["status"], final["exit_code"]) == ("STOPPED", 3)
    assert final["started_at"] and final["stopped_at"] and final["stopped_reason"]
    by_arn = call(app, with_body({"action": "status", "task_arn": started["task_arn"]}))[1]
    assert by_arn["execution_id"] == started["execution_id"]
    logs = call(app, with_body({"action": "logs", "task_arn": started["task_arn"]}))[1]
    messages = [e["message"] for e in logs["events"]]
    assert "hello from the handler" in messages and "to-stderr" in messages
    assert "host process" in "\n".join(messages)  # the log header says where it ran
    listed = call(app, with_body({"action": "list", "limit": 5}))[1]["executions"]
    assert started["execution_id"] in [e["execution_id"] for e in listed]


def test_dry_run_fixture_shows_the_script_and_starts_nothing(app):
    before = call(app, load_event("list_uppercase_header"))[1]["executions"]
    status, body = call(app, load_event("exec_dry_run"))
    assert status == 200 and body["dry_run"] is True
    assert (body["engine"], body["runtime"]) == ("local", "host")
    assert "'echo '\\''it'\\'''\\''s'\\'' \"$(date)\"'" in body["script"]
    assert "--branch 'dev' -- 'https://github.com/octo/hello.git'" in body["script"]
    assert call(app, load_event("list_uppercase_header"))[1]["executions"] == before


@pytest.mark.parametrize("name", ["X-API-Key", "x-api-key", "X-Api-Key", "X-API-KEY", "x-API-kEy"])
def test_header_name_any_case(app, name):
    event = load_event("no_key")
    event["headers"][name] = KEY
    assert call(app, event)[0] == 200


def test_rotated_key_works_and_unknown_key_does_not(app):
    assert call(app, with_body({"action": "list"}, key=ROTATED_KEY))[0] == 200
    assert call(app, with_body({"action": "list"}, key=generate_api_key()))[0] == 401
    assert call(app, with_body({"action": "list"}, key=KEY + "x" * 80))[0] == 401


@pytest.mark.parametrize("body", ["{not json", "x" * (2 * 1024 * 1024), "\ud800", ""])
def test_unauthorized_before_the_body_is_read(app, body):
    assert call(app, with_body(body, key="sk_live_wrong")) == (401, {"error": "unauthorized"})
    assert call(app, with_body(body, key=None)) == (401, {"error": "unauthorized"})


@pytest.mark.parametrize("body", ["[]", "null", "\"exec\"", "5", "{\"action\": \"list\"} trailing", "\ufeff{}",
                                  "{\"action\": NaN}", "1" * 5000, "[" * 100000])
def test_body_that_is_not_a_json_object_is_400(app, body):
    status, resp = call(app, with_body(body))
    assert status == 400, resp


def test_body_over_one_mebibyte_is_413(app):
    big = {"action": "exec", "command": "x", "skip_git": True, "pad": "y" * (1024 * 1024)}
    assert call(app, with_body(big))[0] == 413
    assert call(app, with_body(big, b64=True))[0] == 413


def test_invalid_utf8_body_is_400(app):
    event = with_body(b"{\"action\": \"list\", \"x\": \"\xff\xfe\"}", b64=True)
    assert call(app, event)[0] == 400


@pytest.mark.parametrize("ref", [{"execution_id": "000000000000"}, {"task_arn": "arn:aws:ecs:r:1:task/c/x"},
                                 {"task_arn": "arn:mycli:local:task/ffffffffffff"}])
@pytest.mark.parametrize("action", ["status", "logs", "stop"])
def test_unknown_execution_is_404(app, action, ref):
    status, body = call(app, with_body({"action": action, **ref}))
    assert status == 404 and "not found" in body["error"]


def test_next_token_that_is_not_ours_is_400(app):
    status, started = call(app, with_body({"action": "exec", "command": "true", "skip_git": True}))
    assert status == 200
    for token in ("abc", "-1", "1.5", "²", "١٢", "0x10", " 1"):
        status, body = call(app, with_body({"action": "logs", "execution_id": started["execution_id"],
                                            "next_token": token}))
        assert status == 400 and "next_token" in body["error"], (token, body)


def test_lambda_entry_point_builds_the_app_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("API_KEY_HASH", HASHES.replace(",", "\n"))
    monkeypatch.setenv("MYCLI_ENGINE", "local")
    monkeypatch.setenv("MYCLI_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "host")
    monkeypatch.setattr(lambda_handler, "_app", None)  # a cold start
    resp = lambda_handler.handler(load_event("list_base64"), None)
    assert resp["statusCode"] == 200 and json.loads(resp["body"]) == {"executions": []}
    assert lambda_handler.handler(load_event("no_key"), None)["statusCode"] == 401
    lambda_handler._app.engine.shutdown()


def test_no_key_hash_configured_is_a_clean_error(tmp_path):
    engine = LocalEngine(tmp_path, {"PATH": "/usr/bin:/bin"}, runtime="host")
    app = App(engine, lambda: Authenticator(parse_hashes("")))
    resp = app.handle(load_event("list_lowercase_header"))
    assert resp["statusCode"] == 500
    assert json.loads(resp["body"]) == {"error": "server misconfigured: no API key hash is set (API_KEY_HASH)"}


# nothing a client sends gives a 500 --------------------------------------------------------------

FIELDS = ["action", "command", "repo", "branch", "image", "env", "timeout_seconds", "skip_git", "dry_run",
          "execution_id", "task_arn", "next_token", "limit", "wait_seconds"]
json_scalar = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=30)
json_value = st.recursive(json_scalar, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=10)
odd_text = st.sampled_from(["", "-x", "ext::sh", "²", "00000000000a", "67a1a8f4a3b5", "main", "/tmp",
                            "file:///nonexistent", "a\x00b", "\ud800", "9" * 30, "python:3.11", "arn:x/000000000000",
                            "https://u@github.com/x", "$(touch CANARY)", "MYCLI_X"])
field_value = odd_text | json_value
bodies = st.fixed_dictionaries(
    {"action": st.sampled_from(["exec", "status", "logs", "stop", "list"]) | json_scalar},
    optional={name: field_value for name in FIELDS[1:]},
) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), field_value, max_size=6) | json_value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_no_json_body_gives_a_500(app, body):
    if isinstance(body, dict) and body.get("action") == "exec":
        body["dry_run"] = True  # never run a generated command; everything up to the engine still runs
    try:
        text = json.dumps(body)
    except (ValueError, TypeError):
        return
    status, resp = call(app, with_body(text))
    assert status in (200, 400, 404, 413), resp


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=200), b64=st.booleans())
def test_no_raw_body_gives_a_500(app, raw, b64):
    body = raw if b64 else raw.decode("utf-8", "surrogateescape")
    status, resp = call(app, with_body(body, b64=b64))
    assert status in (400, 404), resp


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(body=bodies)
def test_no_json_body_gives_a_500_extended(app, body):
    """The issue's extended run: ≥ 10,000 generated bodies."""
    test_no_json_body_gives_a_500.hypothesis.inner_test(app, body)
