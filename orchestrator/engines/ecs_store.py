"""Execution records in DynamoDB: what ECS forgets (a stopped task vanishes after about an hour)
and what it never knew (the command as the user typed it, the execution ID → task mapping).

One item per execution, keyed by execution_id; the `by_created` index (constant `kind`, sorted
by created_at) serves `list`, `by_task` serves lookups by task ARN. Items expire after 90 days
(DynamoDB TTL on expires_at).
"""

from __future__ import annotations

from ..engine import Execution
from ..errors import ApiError
from .ecs_aws import Clients, aws_errors

KIND = "execution"
TTL_SECONDS = 90 * 86400
_CHECK = "the executions table (MYCLI_EXECUTIONS_TABLE) and the orchestrator's dynamodb permissions"

# Execution fields stored as they are; everything else in an item is the store's own.
_FIELDS = (
    "execution_id", "task_arn", "status", "desired_status", "created_at", "started_at", "stopped_at",
    "exit_code", "stopped_reason", "stop_code", "command", "repo", "branch", "image", "skip_git",
    "timeout_seconds", "env_keys", "engine", "runtime", "log_stream", "cpu", "memory", "cpu_applied",
    "memory_applied", "resources_enforced", "image_digest",
)


def encode(value: object) -> dict:
    """A Python value as a DynamoDB attribute value (the few types a record holds)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, (int, float)):
        return {"N": repr(value)}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(v) for v in value]}
    raise TypeError(f"cannot store {type(value).__name__}")


def decode(attribute: dict) -> object:
    (kind, value), = attribute.items()
    if kind == "NULL":
        return None
    if kind == "BOOL":
        return bool(value)
    if kind == "N":
        return int(value) if value.lstrip("-").isdigit() else float(value)
    if kind == "L":
        return [decode(v) for v in value]
    return value


def to_item(execution: Execution, **extra: object) -> dict:
    item = {name: encode(getattr(execution, name)) for name in _FIELDS}
    item["kind"] = encode(KIND)
    item["expires_at"] = encode(int(execution.created_at) + TTL_SECONDS)
    item.update({k: encode(v) for k, v in extra.items()})
    return item


def from_item(item: dict) -> tuple[Execution, dict]:
    """(execution, the store's own fields such as task_definition and stop_requested)."""
    data = {k: decode(v) for k, v in item.items()}
    execution = Execution(**{k: data.get(k) for k in _FIELDS if k in data})
    execution.env_keys = list(execution.env_keys or [])
    extra = {k: v for k, v in data.items() if k not in _FIELDS}
    return execution, extra


class ExecutionStore:
    def __init__(self, clients: Clients, table: str):
        self.clients = clients
        self.table = table

    def put(self, execution: Execution, **extra: object) -> None:
        with aws_errors("DynamoDB PutItem", _CHECK):
            self.clients.dynamodb.put_item(TableName=self.table, Item=to_item(execution, **extra))

    def reserve(self, execution: Execution) -> bool:
        """Put `execution` only if its ID is new; False when another run holds the ID already
        (IDs carry 4 random hex digits per second, so two starts can draw the same one)."""
        from botocore.exceptions import ClientError

        try:
            with aws_errors("DynamoDB PutItem", _CHECK):
                try:
                    self.clients.dynamodb.put_item(
                        TableName=self.table, Item=to_item(execution),
                        ConditionExpression="attribute_not_exists(execution_id)",
                    )
                except ClientError as exc:
                    if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                        return False
                    raise
        except ApiError:
            raise
        return True

    def delete(self, execution_id: str) -> None:
        with aws_errors("DynamoDB DeleteItem", _CHECK):
            self.clients.dynamodb.delete_item(TableName=self.table, Key={"execution_id": encode(execution_id)})

    def get(self, execution_id: str) -> tuple[Execution, dict] | None:
        with aws_errors("DynamoDB GetItem", _CHECK):
            item = self.clients.dynamodb.get_item(
                TableName=self.table, Key={"execution_id": encode(execution_id)}, ConsistentRead=True
            ).get("Item")
        return None if item is None else from_item(item)

    def id_for_task(self, task_arn: str) -> str | None:
        with aws_errors("DynamoDB Query", _CHECK):
            items = self.clients.dynamodb.query(
                TableName=self.table, IndexName="by_task", Limit=1,
                KeyConditionExpression="task_arn = :t", ExpressionAttributeValues={":t": encode(task_arn)},
            ).get("Items", [])
        return str(decode(items[0]["execution_id"])) if items else None

    def update(self, execution_id: str, **fields: object) -> None:
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":v{i}": encode(value) for i, value in enumerate(fields.values())}
        assignments = ", ".join(f"#f{i} = :v{i}" for i in range(len(fields)))
        with aws_errors("DynamoDB UpdateItem", _CHECK):
            self.clients.dynamodb.update_item(
                TableName=self.table, Key={"execution_id": encode(execution_id)},
                UpdateExpression=f"SET {assignments}", ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )

    def recent(self, limit: int) -> list[tuple[Execution, dict]]:
        out: list[tuple[Execution, dict]] = []
        start = None
        with aws_errors("DynamoDB Query", _CHECK):
            while len(out) < limit:
                params = dict(
                    TableName=self.table, IndexName="by_created", ScanIndexForward=False, Limit=limit - len(out),
                    KeyConditionExpression="#k = :k", ExpressionAttributeNames={"#k": "kind"},
                    ExpressionAttributeValues={":k": encode(KIND)},
                )
                if start:
                    params["ExclusiveStartKey"] = start
                answer = self.clients.dynamodb.query(**params)
                out += [from_item(item) for item in answer.get("Items", [])]
                start = answer.get("LastEvaluatedKey")
                if not start:
                    break
        return out

