"""env's size limit: one constant, checked in the shared request validation, so the embedded
engine refuses what the AWS engine would, with the same 400 — and what it accepts, AWS carries."""

from __future__ import annotations

import json
import random
import string

import pytest

from orchestrator.api import App
from orchestrator.auth import Authenticator, hash_api_key
from orchestrator.engines.ecs import CONTAINERS, EcsEngine
from orchestrator.engines.ecs_command import build_task_launch
from orchestrator.engines.ecs_scripts import executor_script, fetch_script
from orchestrator.errors import BadRequest
from orchestrator.exec_fields import MAX_ENV_BYTES
from orchestrator.shell import GitHosts
from orchestrator.validation import MAX_COMMAND_BYTES, parse_request

KEY = "sk_live_" + "cd" * 32


def env_of(total: int, alphabet: str = string.ascii_letters, seed: int = 1) -> dict[str, str]:
    """Two variables whose KEY=VALUE\\0 come to exactly `total` bytes (ASCII alphabets)."""
    rng = random.Random(seed)
    first = "".join(rng.choices(alphabet, k=total // 2 - len("A=") - 1))
    second = "".join(rng.choices(alphabet, k=total - total // 2 - len("B=") - 1))
    return {"A": first, "B": second}


def exec_body(env: dict, command: str = "echo hi") -> dict:
    return {"action": "exec", "command": command, "skip_git": True, "env": env}


def refusal(body: dict) -> str:
    with pytest.raises(BadRequest) as info:
        parse_request(body)
    return info.value.message


def test_env_up_to_the_limit_is_accepted_and_one_byte_more_refused_saying_what_to_do():
    assert parse_request(exec_body(env_of(MAX_ENV_BYTES)))[1].env == env_of(MAX_ENV_BYTES)
    message = refusal(exec_body(env_of(MAX_ENV_BYTES + 1)))
    assert f"env is {MAX_ENV_BYTES + 1:,} bytes, over the {MAX_ENV_BYTES:,}-byte limit" in message
    assert "--upload" in message and "\n" not in message


def test_env_is_counted_in_utf8_bytes_not_characters():
    value = "é" * ((MAX_ENV_BYTES - len("K=") - 1) // 2 + 1)  # fewer characters than the limit, more bytes
    assert len(value) < MAX_ENV_BYTES
    assert "over the" in refusal(exec_body({"K": value}))


def test_many_small_variables_count_together():
    many = {f"V{i}": "x" * 60 for i in range(150)}  # each small, 150 * 65 bytes in all
    assert "over the" in refusal(exec_body(many))


def test_what_the_limit_lets_through_always_fits_the_aws_engine():
    """The worst env (incompressible, at the limit) beside the largest ordinary command: the AWS
    engine's transport (packed script, or a one-off task definition) still takes it."""
    noise = env_of(MAX_ENV_BYTES, string.ascii_letters + string.digits + string.punctuation, seed=5)
    words = random.Random(3).choices(["alpha", "beta", "gamma", "print", "for", "in", "range", "x"], k=60000)
    command = "\n".join(f"v{i} = {' '.join(words[i * 6:i * 6 + 6])}" for i in range(9000))[:MAX_COMMAND_BYTES]
    _, request = parse_request(exec_body(noise, command))
    scripts = {"fetch": fetch_script(request, executor_script(request), GitHosts())}
    build_task_launch(scripts, list(CONTAINERS), {"MYCLI_EXECUTION_ID": "0" * 12})  # raises BadRequest if not


def test_both_engines_give_the_same_400(server):
    """The embedded engine over real HTTP, and the AWS engine's App (refused before any AWS call)."""
    body = exec_body(env_of(MAX_ENV_BYTES + 100))
    status, local = server.call(body)
    assert status == 400, local
    aws = App(EcsEngine.from_env({"AWS_REGION": "eu-west-1", "MYCLI_CLUSTER": "c"}),
              lambda: Authenticator((hash_api_key(KEY, rounds=4).encode(),)))
    answer = aws.handle({"headers": {"X-API-Key": KEY}, "body": json.dumps(body)})
    assert answer["statusCode"] == 400
    assert json.loads(answer["body"])["error"] == local["error"]
    assert "over the" in local["error"] and "--upload" in local["error"]
