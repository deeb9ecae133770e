"""The file-transfer parts of the API (issue 15): `upload`, exec's `inputs`/`local_changes`,
`artifacts` — every bad value a 400 naming the field, every good one typed."""

from __future__ import annotations

import pytest

from orchestrator.errors import BadRequest
from orchestrator.ids import is_upload_id, new_upload_id
from orchestrator.validation import (
    DEFAULT_MAX_UPLOAD_BYTES, ExecRequest, Ref, UploadRequest, check_upload_size, parse_request,
)

SHA = "ab" * 32
UP = "up-" + "0123456789abcdef" * 2


def rejected(body: dict) -> str:
    with pytest.raises(BadRequest) as info:
        parse_request(body)
    assert info.value.status == 400
    return info.value.message


@pytest.mark.parametrize("body, word", [
    ({"action": "upload", "sha256": SHA, "purpose": "inputs"}, "size"),
    ({"action": "upload", "size": 0, "sha256": SHA, "purpose": "inputs"}, "size"),
    ({"action": "upload", "size": True, "sha256": SHA, "purpose": "inputs"}, "size"),
    ({"action": "upload", "size": "10", "sha256": SHA, "purpose": "inputs"}, "size"),
    ({"action": "upload", "size": 10, "sha256": SHA.upper(), "purpose": "inputs"}, "sha256"),
    ({"action": "upload", "size": 10, "sha256": SHA[:-1], "purpose": "inputs"}, "sha256"),
    ({"action": "upload", "size": 10, "purpose": "inputs"}, "sha256"),
    ({"action": "upload", "size": 10, "sha256": SHA}, "purpose"),
    ({"action": "upload", "size": 10, "sha256": SHA, "purpose": "outputs"}, "purpose"),
    ({"action": "upload", "size": 10, "sha256": SHA, "purpose": "inputs", "name": "x"}, "name"),
    ({"action": "exec", "command": "x", "skip_git": True, "inputs": "up-123"}, "inputs"),
    ({"action": "exec", "command": "x", "skip_git": True, "inputs": UP.upper()}, "inputs"),
    ({"action": "exec", "command": "x", "skip_git": True, "inputs": 5}, "inputs"),
    ({"action": "exec", "command": "x", "repo": "/r", "local_changes": "../etc"}, "local_changes"),
    ({"action": "exec", "command": "x", "skip_git": True, "local_changes": UP}, "skip_git"),
    ({"action": "artifacts"}, "execution_id"),
    ({"action": "artifacts", "execution_id": "nope"}, "execution_id"),
    ({"action": "artifacts", "execution_id": "67a1a8f4a3b5", "name": "x"}, "name"),
])
def test_bad_file_fields_name_the_field(body, word):
    assert word in rejected(body)


def test_upload_and_artifacts_parse():
    assert parse_request({"action": "upload", "size": 7, "sha256": SHA, "purpose": "local_changes"}) == (
        "upload", UploadRequest(7, SHA, "local_changes"))
    assert parse_request({"action": "artifacts", "execution_id": "67a1a8f4a3b5"}) == (
        "artifacts", Ref(execution_id="67a1a8f4a3b5"))
    action, request = parse_request({"action": "exec", "command": "x", "repo": "/r", "inputs": UP, "local_changes": UP})
    assert isinstance(request, ExecRequest) and (request.inputs, request.local_changes) == (UP, UP)
    _, plain = parse_request({"action": "exec", "command": "x", "skip_git": True, "inputs": None})
    assert (plain.inputs, plain.local_changes) == (None, None)


def test_upload_cap_is_said_in_mib():
    check_upload_size(DEFAULT_MAX_UPLOAD_BYTES, DEFAULT_MAX_UPLOAD_BYTES)
    with pytest.raises(BadRequest) as info:
        check_upload_size(DEFAULT_MAX_UPLOAD_BYTES + 1, DEFAULT_MAX_UPLOAD_BYTES)
    assert "100 MiB" in info.value.message and "MYCLI_MAX_UPLOAD_MB" in info.value.message


def test_upload_ids_are_random_and_recognised():
    ids = {new_upload_id() for _ in range(100)}
    assert len(ids) == 100 and all(is_upload_id(i) for i in ids)
    assert not is_upload_id("up-" + "g" * 32) and not is_upload_id(None) and not is_upload_id(UP + "\n")
