"""Files in and results out on AWS, through the stack's bucket (MYCLI_BUCKET).

- `create_upload`: a presigned S3 PUT (15 minutes) to `uploads/{purpose}/{upload_id}` with
  Content-Length and x-amz-checksum-sha256 signed, so S3 itself refuses another size or body;
  the purpose is part of the key, so an exec cannot use an upload for the other purpose.
- `check_uploads`: before a task starts, each upload an exec names must exist (HeadObject);
  without s3:ListBucket S3 answers 403 for a missing key, so 403 and 404 both mean "not there".
- `artifacts`: the publish container's manifest (`artifacts/{id}/manifest`, ecs_scripts.py)
  lists the files; each gets a presigned GET (15 minutes). No manifest yet: incomplete while the
  task runs, complete with a reason once it has stopped without one. A stopped run has one too:
  ECS stops the executor before publish, which then uploads (ecs_scripts.py).
"""

from __future__ import annotations

import base64
import time

from ..artifacts import name_problem, shown_name
from ..engine import STOPPED, Execution
from ..errors import BadRequest, ServerMisconfigured
from ..ids import new_upload_id
from ..validation import ExecRequest, UploadRequest, check_upload_size
from .ecs_aws import Clients, aws_errors, error_code
from .ecs_scripts import MANIFEST_NAME, artifacts_prefix, upload_key

URL_SECONDS = 15 * 60
_CHECK_S3 = "the bucket (MYCLI_BUCKET) and the orchestrator's s3 permissions on it"


class Files:
    def __init__(self, clients: Clients, bucket: str, max_upload: int):
        self.clients, self.bucket, self.max_upload = clients, bucket, max_upload

    def _need_bucket(self) -> None:
        if not self.bucket:
            raise ServerMisconfigured("server misconfigured: the AWS engine needs MYCLI_BUCKET for uploads and "
                                      "artifacts (an output of stacks deployed since files came in; run mycli init --force)")

    def create_upload(self, request: UploadRequest) -> dict:
        self._need_bucket()
        check_upload_size(request.size, self.max_upload)
        upload_id = new_upload_id()
        checksum = base64.b64encode(bytes.fromhex(request.sha256)).decode("ascii")
        with aws_errors("S3 presign PutObject", _CHECK_S3):
            url = self.clients.s3.generate_presigned_url(
                "put_object", ExpiresIn=URL_SECONDS,
                Params={"Bucket": self.bucket, "Key": upload_key(request.purpose, upload_id),
                        "ContentLength": request.size, "ChecksumSHA256": checksum},
            )
        return {"upload_id": upload_id, "url": url, "method": "PUT",
                "headers": {"Content-Length": str(request.size), "x-amz-checksum-sha256": checksum,
                            "Content-Type": "application/octet-stream"},
                "expires_at": time.time() + URL_SECONDS}

    def check_uploads(self, request: ExecRequest) -> None:
        for purpose, upload_id in (("inputs", request.inputs), ("local_changes", request.local_changes)):
            if upload_id is None:
                continue
            self._need_bucket()
            if not self._exists(upload_key(purpose, upload_id)):
                raise BadRequest(f"{purpose} names upload {upload_id}, which was not uploaded (or not as {purpose}, "
                                 "or it expired); upload the files again")

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        with aws_errors("S3 HeadObject", _CHECK_S3):
            try:
                self.clients.s3.head_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in ("404", "403", "NoSuchKey", "NotFound", "AccessDenied", "Forbidden"):
                    return False
                raise
        return True

    def artifacts(self, execution: Execution) -> dict:
        answer = {"execution_id": execution.execution_id, "artifacts": [], "complete": False, "skipped": [], "reason": None}
        manifest = self._manifest(execution.execution_id) if self.bucket else None
        if manifest is None:
            if execution.status == STOPPED:
                answer["complete"] = True
                answer["reason"] = (
                    "no outputs were collected: the bucket is not configured (MYCLI_BUCKET)" if not self.bucket else
                    "no outputs were collected: the publish step did not finish (see the end of the run's log)")
            return answer
        artifacts, skipped = parse_manifest(manifest)
        prefix = artifacts_prefix(execution.execution_id)
        with aws_errors("S3 presign GetObject", _CHECK_S3):
            for item in artifacts:
                item["url"] = self.clients.s3.generate_presigned_url(
                    "get_object", ExpiresIn=URL_SECONDS, Params={"Bucket": self.bucket, "Key": prefix + "files/" + item.pop("key")})
        answer.update(artifacts=artifacts, skipped=skipped, complete=True)
        return answer

    def _manifest(self, execution_id: str) -> str | None:
        from botocore.exceptions import ClientError

        with aws_errors("S3 GetObject", _CHECK_S3):
            try:
                body = self.clients.s3.get_object(Bucket=self.bucket, Key=artifacts_prefix(execution_id) + MANIFEST_NAME)["Body"]
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404", "403", "AccessDenied"):
                    return None
                raise
            return body.read().decode("utf-8", "surrogateescape")  # a name that is not UTF-8 stays recognisable


def parse_manifest(text: str) -> tuple[list[dict], list[str]]:
    """The publish container's lines → artifacts (with their object `key`) and skipped lines.
    What the command named badly is left out here too: a manifest is the run's own output."""
    artifacts, skipped, seen = [], [], set()
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "S":
            skipped.append(rest.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            continue
        parts = rest.split("\t", 3)
        if kind != "F" or len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
            continue
        key, size, sha256, name = parts
        problem = name_problem(name)
        if problem:  # the publish step's shell cannot tell UTF-8: a Latin-1 name is left out here
            skipped.append(f"{shown_name(name)}: not a usable name ({problem})")
            continue
        if name in seen or len(sha256) != 64:
            continue
        seen.add(name)
        artifacts.append({"name": name, "size": int(size), "sha256": sha256, "key": key})
    return artifacts, skipped
