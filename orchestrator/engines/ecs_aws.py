"""AWS clients for the ECS engine, and AWS errors turned into API errors that say what to check.

Clients come from botocore directly: boto3 would add nothing we use and ~150 ms of imports
(s3transfer) to every Lambda cold start. botocore is imported on first use, not at module
import, so `import orchestrator.handler` (and the
local front's start-up) stays light. Clients use botocore's standard retry mode: throttling and
transient 5xx answers are retried with backoff before an error reaches us.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

from ..errors import ApiError, EngineUnavailable, ServerMisconfigured, UpstreamError

log = logging.getLogger("mycli.ecs")

THROTTLING = {
    "Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException",
    "RequestLimitExceeded", "ProvisionedThroughputExceededException", "RequestThrottled",
    "LimitExceededException", "ServiceUnavailable", "ServiceUnavailableException",
}
DENIED = {
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnrecognizedClientException",
    "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException", "InvalidSignatureException",
}
MAX_AWS_MESSAGE = 300


class Clients:
    """One client per service, created lazily and shared by threads (botocore clients are thread-safe)."""

    def __init__(self, region: str | None):
        self.region = region
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self._session = None

    def __getattr__(self, service: str):
        if service.startswith("_"):
            raise AttributeError(service)
        client = self._clients.get(service)
        if client is None:
            with self._lock:
                client = self._clients.get(service)
                if client is None:
                    client = self._clients[service] = self._make(service)
        return client

    def _make(self, service: str):
        import botocore.session
        from botocore.config import Config

        config = Config(
            retries={"mode": "standard"},  # botocore's per-service attempts (3; DynamoDB 4) unless AWS_MAX_ATTEMPTS
            connect_timeout=5,
            read_timeout=20,
            user_agent_extra="mycli-orchestrator",
            # presigned S3 URLs with SigV4 (content-length and x-amz-checksum-sha256 signed)
            **({"signature_version": "s3v4"} if service == "s3" else {}),
        )
        if self._session is None:
            self._session = botocore.session.get_session()
        return self._session.create_client(service, region_name=self.region, config=config)


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str((response.get("Error") or {}).get("Code") or "")


def _aws_message(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    message = str((response.get("Error") or {}).get("Message") or exc)
    return " ".join(message.split())[:MAX_AWS_MESSAGE]


@contextlib.contextmanager
def aws_errors(what: str, check: str) -> Iterator[None]:
    """Turn botocore failures of `what` (e.g. "ECS RunTask") into ApiErrors.

    `check` tells the operator where to look when AWS refuses for a reason of its own.
    """
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError
    from botocore.parsers import ResponseParserError

    try:
        yield
    except ApiError:
        raise
    except ClientError as exc:
        code = error_code(exc)
        log.warning("%s failed: %s: %s", what, code, _aws_message(exc))
        if code in THROTTLING:
            raise EngineUnavailable(f"AWS is throttling or briefly unavailable for {what} (after retries); try again in a few seconds") from None
        if code in DENIED:
            raise UpstreamError(
                f"AWS denied {what} ({code}): check the orchestrator's IAM role (LambdaRole in the stack) "
                f"and its credentials; AWS said: {_aws_message(exc)}"
            ) from None
        raise UpstreamError(f"{what} failed ({code or 'error'}): {_aws_message(exc)}; check {check}") from None
    except NoCredentialsError:
        raise ServerMisconfigured("server misconfigured: no AWS credentials found (set AWS_PROFILE or run aws configure)") from None
    except NoRegionError:
        raise ServerMisconfigured("server misconfigured: no AWS region set (set AWS_REGION)") from None
    except EndpointConnectionError as exc:
        raise EngineUnavailable(f"cannot reach AWS for {what} ({exc}); check the network and AWS_ENDPOINT_URL") from None
    except (BotoCoreError, ResponseParserError) as exc:
        first = (str(exc).splitlines() or [""])[0][:MAX_AWS_MESSAGE]
        raise EngineUnavailable(f"{what} failed: {type(exc).__name__}: {first}; try again") from None
