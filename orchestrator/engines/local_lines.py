"""One execution's log lines on their way to the store.

Lines are numbered when they are stored, so a line dropped on the way leaves no gap. While the
disk is full they are held, up to MAX_PENDING_BYTES; beyond that the oldest are dropped and
counted, and the next successful write starts with one note saying exactly how many. The count
is kept apart from the held lines until that write succeeds, so a note can never itself be
dropped (and its count lost) while the disk stays full.

A log may also be capped (`max_bytes`, see local_retention.py): a note marks where it was cut,
and when the output ends another says how many lines, and how much, came after the cap. The
engine's own notes (why a run ended) are kept whatever the cap.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import deque

from ..ratelog import RateLimitedLog
from ..units import MIB, human_size
from .local_retention import LINE_OVERHEAD

MAX_PENDING_BYTES = 4 << 20  # held in memory while the disk is full; older lines are dropped
ENTRY_BYTES = 80  # what holding one line costs beyond its characters (tuple, str header)

log = RateLimitedLog(logging.getLogger("mycli.local"))


def dropped_note(count: int) -> str:
    return f"[mycli: {count} log {'line was' if count == 1 else 'lines were'} dropped because the engine's disk was full]"


class LineSink:
    def __init__(self, store, execution_id: str, max_bytes: int | None = None):
        self.store = store
        self.execution_id = execution_id
        self.max_bytes = max_bytes
        self._logged = 0  # what the log holds, as the cap counts it
        self._cut: list[int] | None = None  # [lines, characters] past the cap, once it is reached
        self._next_seq = 1
        self._pending: deque[tuple[int, str, int]] = deque()  # (timestamp ms, message, partial)
        self._pending_bytes = 0
        self._dropped = 0  # lines dropped since the last successful write
        self.line_open = False  # the last event emitted was partial: the next one continues its line

    def emit(self, lines: list[str], partial: bool = False, note: bool = False) -> None:
        """Queue events; `partial`: they are not followed by a newline (LogPage.partial);
        `note`: the engine's own words, which the cap does not cut."""
        if not lines:
            return
        ts, flag = int(time.time() * 1000), int(partial)
        cap_note = None
        if self.max_bytes is not None and not note:
            lines, cap_note = self._within_cap(lines)
        self._pending.extend([(ts, line, flag) for line in lines])
        self._pending_bytes += sum(map(len, lines)) + ENTRY_BYTES * len(lines)
        self.line_open = partial and bool(lines)
        if cap_note:
            self._pending.append((ts, cap_note, 0))
            self.line_open = False

    def end_of_output(self) -> None:
        """The output is over: say how much came after the cap, if it was reached."""
        if self._cut is not None and self._cut[0]:
            lines, chars = self._cut
            self.emit([f"[mycli: {lines} {'line' if lines == 1 else 'lines'} ({human_size(chars)}) after the cap "
                       f"were not kept]"], note=True)

    def _within_cap(self, lines: list[str]) -> tuple[list[str], str | None]:
        """(the lines that fit under the cap, the note that marks the cut if it is here)."""
        if self._cut is not None:
            self._cut[0] += len(lines)
            self._cut[1] += sum(map(len, lines))
            return [], None
        cost = sum(map(len, lines)) + LINE_OVERHEAD * len(lines)
        if self._logged + cost <= self.max_bytes:
            self._logged += cost
            return lines, None
        kept = []
        for line in lines:
            if self._logged + len(line) + LINE_OVERHEAD > self.max_bytes:
                break
            self._logged += len(line) + LINE_OVERHEAD
            kept.append(line)
        rest = lines[len(kept):]
        self._cut = [len(rest), sum(map(len, rest))]
        cap = f"{self.max_bytes / MIB:g} MiB"
        return kept, (f"[mycli: the log reached its cap of {cap} here; the rest of the output is not kept "
                      f"(the server's MYCLI_MAX_LOG_MB)]")

    def flush(self) -> None:
        """Store what is held; on a full disk keep it (the ballast stays for final states)."""
        if not self._pending:
            return
        try:
            if not self.store.reserve_in_place():
                raise sqlite3.OperationalError("the disk is full (the engine's reserve is spent)")
            self._write()
        except sqlite3.OperationalError as exc:
            while self._pending_bytes > MAX_PENDING_BYTES and len(self._pending) > 1:
                _, message, _ = self._pending.popleft()
                self._pending_bytes -= len(message) + ENTRY_BYTES
                self._dropped += 1
                if self._cut is None:
                    self._logged -= len(message) + LINE_OVERHEAD  # the cap bounds what is stored
            if self._dropped:
                log.error("disk-full", "execution %s: the disk is full (%s); %d log lines dropped so far",
                          self.execution_id, exc, self._dropped)

    def flush_final(self) -> None:
        """The last write of a run goes through the store's reserve, so its end is recorded; if
        even that fails, one note says how many lines were lost."""
        if not self._pending and not self._dropped:
            return
        if self.store.critical(self._write, attempts=3):
            return
        self._dropped += len(self._pending)
        last_ts = self._pending[-1][0] if self._pending else int(time.time() * 1000)
        self._pending.clear()
        self._pending_bytes = 0
        note = [(self._next_seq, last_ts, dropped_note(self._dropped), 0)]
        if self.store.critical(lambda: self.store.append_lines(self.execution_id, note)):
            self._next_seq += 1
            self._dropped = 0

    def _write(self) -> None:
        rows = []
        if self._dropped:
            first_ts = self._pending[0][0] if self._pending else int(time.time() * 1000)
            rows.append((first_ts, dropped_note(self._dropped), 0))
        rows.extend(self._pending)
        numbered = [(seq, *row) for seq, row in enumerate(rows, start=self._next_seq)]
        self.store.append_lines(self.execution_id, numbered)  # raises on a full disk: nothing changes
        self._next_seq += len(numbered)
        self._pending.clear()
        self._pending_bytes = 0
        self._dropped = 0

