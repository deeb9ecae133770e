"""How much of a run's log the text view puts in a notebook.

Under nbconvert, papermill or nbval every printed line is stored in the .ipynb: 300,000 lines made
a 12 MB notebook. The panel renders only the newest `tail_lines`; the text view, which streams,
prints the first half of that as it comes, then holds the newest half in a ring and prints it when
the run ends, after one line that says exactly how many lines were left out and where the whole
log is. Characters are bounded too (one 3 MB line is a 3 MB notebook). A terminal stores
nothing, so there the view prints everything.
"""

from __future__ import annotations

from collections import deque

MAX_CHARS = 1 << 20  # of the head, and of the tail


class TextCap:
    def __init__(self, lines: int):
        self.head_lines = max(1, lines // 2)
        self.tail_lines = max(1, lines - self.head_lines)
        self.shown_lines = self.shown_chars = 0
        self.capped = False
        self.ring: deque[tuple] = deque()  # (timestamp, message, partial) events past the head
        self.ring_chars = 0
        self.omitted_lines = self.omitted_chars = 0

    def admit(self, events: list) -> tuple[list, bool]:
        """(the events to print now, whether the head is full from here on: say so once)."""
        if self.capped:
            self._hold(events)
            return [], False
        shown = []
        for index, event in enumerate(events):
            if self.shown_lines >= self.head_lines or self.shown_chars + len(event[1]) > MAX_CHARS:
                self.capped = True
                self._hold(events[index:])
                return shown, True
            shown.append(event)
            self.shown_chars += len(event[1])
            self.shown_lines += not event[2]
        return shown, False

    def _hold(self, events: list) -> None:
        for event in events:
            self.ring.append(event)
            self.ring_chars += len(event[1])
        while self.ring and (len(self.ring) > self.tail_lines or self.ring_chars > MAX_CHARS):
            _, message, partial = self.ring.popleft()
            self.ring_chars -= len(message)
            self.omitted_chars += len(message)
            self.omitted_lines += not partial

    def drain(self) -> tuple[int, int, list]:
        """(lines left out, their characters, the held events to print now); the ring empties."""
        held, self.ring, self.ring_chars = list(self.ring), deque(), 0
        return self.omitted_lines, self.omitted_chars, held
