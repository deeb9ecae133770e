"""A run's merged output, as bytes arrive, turned into log events.

One timestamp per chunk read; a line split across chunks is joined; a line still waiting for
its newline can be sent as a partial event (a progress message shows when it is printed, not when
its line ends), and the rest of it, when it comes, continues it; an over-long line becomes
pieces of at most MAX_EVENT_CHARS, all but the last partial. Invalid UTF-8 becomes U+FFFD.
"""

from __future__ import annotations

import codecs

from ..engine import MAX_EVENT_CHARS
from .local_lines import LineSink


class OutputLines:
    def __init__(self, lines: LineSink):
        self.lines = lines
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._waiting = ""  # the start of a line whose newline has not come yet

    @property
    def line_waiting(self) -> bool:
        return bool(self._waiting)

    def feed(self, data: bytes) -> None:
        """A chunk of output: its whole lines emitted and stored."""
        *complete, self._waiting = (self._waiting + self._decoder.decode(data)).split("\n")
        if max(map(len, complete), default=0) <= MAX_EVENT_CHARS:
            self.lines.emit(complete)
        else:  # the rare over-long line: pieces, all but its last one partial
            for line in complete:
                self.lines.emit(_pieces(line)[:-1], partial=True)
                self.lines.emit(_pieces(line)[-1:])
        while len(self._waiting) > MAX_EVENT_CHARS:
            self.lines.emit([self._waiting[:MAX_EVENT_CHARS]], partial=True)
            self._waiting = self._waiting[MAX_EVENT_CHARS:]
        self.lines.flush()

    def send_waiting_line(self) -> None:
        """The line so far as a partial event; the rest of it, when it comes, continues it."""
        self.lines.emit([self._waiting], partial=True)
        self.lines.flush()
        self._waiting = ""

    def end(self) -> None:
        """The output's end ends its last line (the engine's own notes follow)."""
        tail = self._waiting + self._decoder.decode(b"", final=True)
        self._waiting = ""
        if tail or self.lines.line_open:
            self.lines.emit([tail])
        self.lines.end_of_output()


def _pieces(line: str) -> list[str]:
    """A line as events of at most MAX_EVENT_CHARS (an empty line stays one empty event)."""
    return [line[i:i + MAX_EVENT_CHARS] for i in range(0, len(line), MAX_EVENT_CHARS)] or [line]
