"""AWS throttling and 5xx, injected at the edge: a proxy in front of the moto server answers the
first N matching requests with an AWS error and forwards the rest. Our engine's clients (botocore's
standard retry mode) must retry, and past their attempts turn the failure into a clear API error.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.support.aws import FAKE_CREDENTIALS, moto_endpoint

pytestmark = pytest.mark.aws

THROTTLE = (400, {"__type": "com.amazonaws.dynamodb.v20120810#ThrottlingException", "message": "Rate exceeded"})
INTERNAL = (500, {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError", "message": "Internal server error"})


class FaultProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str):
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.target = ""  # X-Amz-Target suffix to fail, e.g. "GetItem"
        self.failures_left = 0
        self.fault = THROTTLE
        self.seen = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def inject(self, target: str, times: int, fault=THROTTLE) -> None:
        with self.lock:
            self.target, self.failures_left, self.fault, self.seen = target, times, fault, 0


class _Forward(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FaultProxy

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        target = self.headers.get("X-Amz-Target", "")
        with self.server.lock:
            hit = bool(self.server.target) and target.endswith("." + self.server.target)
            if hit:
                self.server.seen += 1
            fail = hit and self.server.failures_left > 0
            if fail:
                self.server.failures_left -= 1
                status, payload = self.server.fault
        if fail:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        up = http.client.HTTPConnection(self.server.upstream.hostname, self.server.upstream.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        up.request("POST", self.path, body=body, headers=headers)
        resp = up.getresponse()
        data = resp.read()
        self.send_response(resp.status)
        for name, value in resp.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        up.close()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def proxy(monkeypatch_module):
    upstream = moto_endpoint()
    server = FaultProxy(upstream)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name, value in FAKE_CREDENTIALS.items():
        monkeypatch_module.setenv(name, value)
    monkeypatch_module.setenv("AWS_ENDPOINT_URL", server.url)
    monkeypatch_module.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # botocore's standard mode makes 3 attempts (4 for DynamoDB from botocore 1.44): pin it
    monkeypatch_module.setenv("AWS_MAX_ATTEMPTS", "3")
    monkeypatch_module.delenv("AWS_RETRY_MODE", raising=False)
    yield server
    server.shutdown()


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def store(proxy):
    import boto3

    from orchestrator.engine import STOPPED, Execution
    from orchestrator.engines.ecs_aws import Clients
    from orchestrator.engines.ecs_store import ExecutionStore

    table = f"mycli-faults-{int(time.time() * 1000)}"
    ddb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=moto_endpoint())
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "execution_id", "AttributeType": "S"},
                              {"AttributeName": "task_arn", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "execution_id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{"IndexName": "by_task", "KeySchema": [{"AttributeName": "task_arn", "KeyType": "HASH"}],
                                 "Projection": {"ProjectionType": "ALL"}}],
    )
    store = ExecutionStore(Clients("us-east-1"), table)
    execution = Execution(
        execution_id="6b0b00000001", task_arn="arn:aws:ecs:us-east-1:123456789012:task/c/0000", status=STOPPED,
        created_at=time.time(), command="true", repo=None, branch=None, image="alpine:3", skip_git=True,
        timeout_seconds=60, engine="ecs", runtime="fargate", log_stream="task/executor/0000", exit_code=0,
    )
    store.put(execution)
    return store


@pytest.mark.parametrize("fault", [THROTTLE, INTERNAL], ids=["throttling", "5xx"])
def test_transient_aws_errors_are_retried(proxy, store, fault):
    proxy.inject("GetItem", times=2, fault=fault)
    found = store.get("6b0b00000001")
    assert found is not None and found[0].exit_code == 0
    assert proxy.seen == 3, "three attempts (AWS_MAX_ATTEMPTS)"


def test_persistent_throttling_becomes_a_clear_503(proxy, store):
    from orchestrator.errors import EngineUnavailable

    proxy.inject("GetItem", times=100, fault=THROTTLE)
    with pytest.raises(EngineUnavailable) as caught:
        store.get("6b0b00000001")
    assert "throttling" in caught.value.message and "try again" in caught.value.message
    assert proxy.seen == 3
    assert caught.value.status == 503


def test_persistent_5xx_becomes_a_clear_error_without_a_traceback(proxy, store):
    from orchestrator.errors import ApiError

    proxy.inject("GetItem", times=100, fault=INTERNAL)
    with pytest.raises(ApiError) as caught:
        store.get("6b0b00000001")
    message = caught.value.message
    assert "DynamoDB GetItem" in message and "Traceback" not in message
    assert caught.value.status in (502, 503)


def test_an_execution_id_already_taken_is_never_overwritten(proxy, store):
    """Two starts in one second can draw the same ID: the record is written only if the ID is new."""
    import dataclasses

    proxy.inject("", times=0)
    first, _ = store.get("6b0b00000001")
    intruder = dataclasses.replace(first, command="echo second", task_arn="arn:aws:ecs:us-east-1:123456789012:task/c/1111")
    assert store.reserve(intruder) is False
    again, _ = store.get("6b0b00000001")
    assert again.command == first.command and again.task_arn == first.task_arn
    fresh = dataclasses.replace(first, execution_id="6b0b00000002")
    assert store.reserve(fresh) is True
