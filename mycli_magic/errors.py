"""Client-side typed errors. The CLI and the magic each turn them into user words in one place."""


class MycliError(Exception):
    """Base: `str(exc)` is the one line shown to the user; `exit_code` is the CLI's."""

    exit_code = 1

    def _render_traceback_(self) -> list[str]:
        """What IPython shows when a handle's method raises it (`run.open("nope.txt")`): this one
        line, as for a failed run, not a traceback through the client's modules."""
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


class UsageError(MycliError):
    """The user asked for something malformed (exit 2)."""

    exit_code = 2


class ConfigError(MycliError):
    """A configuration file or value is wrong; the message names the file and key."""

    exit_code = 2


class ConnectionFailed(MycliError):
    """The API endpoint could not be reached.

    `cause` is what failed without the advice on what to do, for a caller that knows better
    advice (a follower whose execution already started must not say "run it again").
    """

    def __init__(self, message: str, cause: str | None = None):
        super().__init__(message)
        self.cause = cause or message


class ApiRequestError(MycliError):
    """The API answered with an error status; `status` is the HTTP status."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status
        if status == 400:  # the request was malformed: a usage error, as a bad flag is
            self.exit_code = 2


class NothingStarted(KeyboardInterrupt):
    """The user interrupted (Ctrl-C, the notebook's ■) while a run's files were being prepared
    or sent: nothing was started. Still a KeyboardInterrupt, so a notebook's Run All stops;
    `str()` is the one line to show, and IPython shows it alone, without a traceback."""

    def __init__(self, line: str):
        super().__init__(line)
        self.line = line

    def _render_traceback_(self) -> list[str]:
        return [self.line]
