"""A log that says each kind of problem at most once a minute.

A flood (thousands of broken connections, a disk that stays full) must not grow the server log
without limit, yet an operator should still see that it happens and how often.
"""

from __future__ import annotations

import logging
import threading
import time

PERIOD_SECONDS = 60.0


class RateLimitedLog:
    def __init__(self, logger: logging.Logger, period: float = PERIOD_SECONDS):
        self.logger = logger
        self.period = period
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def warning(self, kind: str, message: str, *args, **kwargs) -> None:
        self._log(logging.WARNING, kind, message, args, kwargs)

    def error(self, kind: str, message: str, *args, **kwargs) -> None:
        self._log(logging.ERROR, kind, message, args, kwargs)

    def _log(self, level: int, kind: str, message: str, args: tuple, kwargs: dict) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        if suppressed:
            message += f" (and {suppressed} more like it in the last {self.period:.0f} s)"
        self.logger.log(level, message, *args, **kwargs)
