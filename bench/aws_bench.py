"""The Lambda handler's warm path on the AWS engine, with AWS itself replaced by botocore's
Stubber (canned answers at the HTTP edge; our code, botocore's serialisation and parsing run)."""

from __future__ import annotations

import json
import os
import time

from harness import Row, percentile

SETTINGS = {
    "MYCLI_CLUSTER": "mycli-cluster", "MYCLI_SUBNETS": "subnet-1", "MYCLI_SECURITY_GROUPS": "sg-1",
    "MYCLI_TASK_DEFINITION": "mycli-task", "MYCLI_LOG_GROUP": "/aws/mycli/mycli",
    "MYCLI_EXECUTIONS_TABLE": "mycli-executions", "AWS_REGION": "us-east-1",
}
MAX_RATIO = 2  # the handler's own work (auth from its cache, validation, JSON) beside botocore's


def handler_warm_aws(quick: bool) -> list[Row]:
    from botocore.stub import Stubber

    from orchestrator.api import App
    from orchestrator.auth import Authenticator, generate_api_key, hash_api_key
    from orchestrator.engine import RUNNING, Execution
    from orchestrator.engines.ecs import EcsEngine
    from orchestrator.engines.ecs_store import to_item

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    engine = EcsEngine.from_env(SETTINGS)
    arn = "arn:aws:ecs:us-east-1:123456789012:task/mycli-cluster/0123456789abcdef0123456789abcdef"
    execution = Execution(
        execution_id="6b0b00000000", task_arn=arn, status=RUNNING, created_at=time.time(), command="true",
        repo=None, branch=None, image="alpine:3", skip_git=True, timeout_seconds=1800, engine="ecs",
        runtime="fargate", log_stream="task/executor/0123456789abcdef0123456789abcdef",
    )
    item = {"Item": to_item(execution)}
    task = {"tasks": [{"taskArn": arn, "lastStatus": "RUNNING", "desiredStatus": "RUNNING",
                       "containers": [{"name": "executor", "lastStatus": "RUNNING"}]}], "failures": []}
    key = generate_api_key()
    app = App(engine, lambda: Authenticator((hash_api_key(key).encode(),)))
    event = {"httpMethod": "POST", "path": "/execute", "headers": {"X-API-Key": key},
             "body": json.dumps({"action": "status", "execution_id": execution.execution_id})}
    n = 300 if quick else 2000
    with Stubber(engine.clients.dynamodb) as ddb, Stubber(engine.clients.ecs) as ecs:
        def one() -> float:
            ddb.add_response("get_item", item)
            ecs.add_response("describe_tasks", task)
            started = time.perf_counter()
            response = app.handle(event)
            elapsed = (time.perf_counter() - started) * 1000
            assert response["statusCode"] == 200, response["body"]
            return elapsed

        def bare() -> float:  # the baseline: the same two AWS calls through botocore, without mycli
            ddb.add_response("get_item", item)
            ecs.add_response("describe_tasks", task)
            started = time.perf_counter()
            engine.clients.dynamodb.get_item(TableName=SETTINGS["MYCLI_EXECUTIONS_TABLE"],
                                             Key={"execution_id": {"S": execution.execution_id}})
            engine.clients.ecs.describe_tasks(cluster=SETTINGS["MYCLI_CLUSTER"], tasks=[arn])
            return (time.perf_counter() - started) * 1000

        for _ in range(5):
            one()  # warm: bcrypt once, clients built
            bare()
        samples, base = [], []
        for _ in range(n):  # interleaved, so both see the same load
            samples.append(one())
            base.append(bare())
    p50, base50 = percentile(samples, 50), percentile(base, 50)
    return [Row("handler warm status request, auth included (AWS engine, stubbed AWS)", p50,
                "the botocore calls alone (p50)", base50, f"≤ {MAX_RATIO}×", p50 <= MAX_RATIO * base50, unit="ms",
                note=f"p90 {percentile(samples, 90):.2f} ms; GetItem + DescribeTasks through botocore per request")]
