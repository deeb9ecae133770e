"""Typed errors. Each front turns them into user words in exactly one place.

An ApiError carries the HTTP status it maps to and a message that is safe to show a client:
it never holds a traceback, a secret or an internal path.
"""


class ApiError(Exception):
    """An error the client caused or can act on; `message` is shown verbatim."""

    status = 500

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadRequest(ApiError):
    status = 400

    def __init__(self, message: str):
        super().__init__(f"invalid request: {message}")


class Unauthorized(ApiError):
    status = 401

    def __init__(self, message: str = "unauthorized"):
        super().__init__(message)


class NotFound(ApiError):
    status = 404


class MethodNotAllowed(ApiError):
    status = 405


class PayloadTooLarge(ApiError):
    status = 413


class EngineUnavailable(ApiError):
    """The engine cannot take work right now (disk full, AWS throttling after retries...)."""

    status = 503


class UpstreamError(ApiError):
    """A dependency (AWS) refused or failed; the message says what to check."""

    status = 502


class ServerMisconfigured(ApiError):
    """The operator's configuration is wrong (e.g. no valid API key hash)."""

    status = 500
