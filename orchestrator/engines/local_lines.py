"""One execution's log lines on their way to the store.

Lines are numbered when they are stored, so a line dropped on the way leaves no gap. While the
disk is full they are held, up to MAX_PENDING_BYTES; beyond that the oldest are dropped and
counted, and the next successful write starts with one note saying exactly how many. The count
is kept apart from the held lines until that write succeeds, so a note can never itself be
dropped (and its count lost) while the disk stays full.

A log may also be capped (`max_bytes`, see local_retention.py). What a long run prints last —
the traceback it crashed with, the script's own footer — matters most, so the cap keeps a head
and a tail: the first `max_bytes - tail` of the output as it comes, then a note where it was cut;
after that the last `tail` bytes are held in a ring (TAIL_FRACTION of the cap, at most
MAX_TAIL_BYTES) and stored when the output ends, after a note that says exactly how many lines,
and how much, were left out between the two. The engine's own notes (why a run ended) are kept
whatever the cap; one that comes while the ring is held stores the ring first, so the log stays
in order.
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
TAIL_FRACTION = 0.1  # of a capped log, kept from the end of the output
MAX_TAIL_BYTES = MIB
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
        self._cut: list[int] | None = None  # [lines, characters] left out, once the cap is reached
        self._tail_bytes = 0 if max_bytes is None else min(int(max_bytes * TAIL_FRACTION), MAX_TAIL_BYTES)
        self._ring: deque[tuple[int, str, int]] = deque()  # the last lines past the cap (timestamp ms, message, partial)
        self._ring_bytes = 0
        self._over: list[str] = []  # what _within_cap could not fit, for the ring
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
        if note:
            self._store_tail()  # what the ring holds came before this note
        cap_note = None
        if self.max_bytes is not None and not note:
            lines, cap_note = self._within_cap(lines)
        self._add(ts, lines, flag)
        if cap_note:
            self._add(ts, [cap_note], 0)
        if self._cut is not None and not note:
            self._hold_in_ring(ts, self._over, flag)
        self.line_open = partial and cap_note is None

    def _add(self, ts: int, lines: list[str], flag: int) -> None:
        self._pending.extend([(ts, line, flag) for line in lines])
        self._pending_bytes += sum(map(len, lines)) + ENTRY_BYTES * len(lines)

    def end_of_output(self) -> None:
        """The output is over: its last lines (the ring), after the note on what was left out."""
        self._store_tail()

    def _hold_in_ring(self, ts: int, lines: list[str], flag: int) -> None:
        """Past the cap: keep the last `_tail_bytes` of the output; what falls out is counted."""
        for line in lines:
            self._ring.append((ts, line, flag))
            self._ring_bytes += len(line) + LINE_OVERHEAD
        while self._ring and self._ring_bytes > self._tail_bytes:
            _, line, _ = self._ring.popleft()
            self._ring_bytes -= len(line) + LINE_OVERHEAD
            self._cut[0] += 1
            self._cut[1] += len(line)

    def _store_tail(self) -> None:
        """The note on the lines left out (if any were), then the ring, into the pending lines."""
        if self._cut is None or not (self._cut[0] or self._ring):
            return
        lines, chars = self._cut
        ts = self._ring[0][0] if self._ring else int(time.time() * 1000)
        if lines:
            kept = len(self._ring)
            self._add(ts, [f"[mycli: {lines:,} {'line' if lines == 1 else 'lines'} ({human_size(chars)}) left out here "
                           f"(the log's cap); the last {kept:,} {'line follows' if kept == 1 else 'lines follow'}]"], 0)
        for entry in self._ring:
            self._add(entry[0], [entry[1]], entry[2])
        self._ring.clear()
        self._ring_bytes = 0
        self._cut = [0, 0]

    def _within_cap(self, lines: list[str]) -> tuple[list[str], str | None]:
        """(the lines that fit under the head's part of the cap, the note that marks the cut if
        it is here); `_over` is left holding the lines past it, for the ring."""
        self._over: list[str] = lines
        if self._cut is not None:
            return [], None
        head = self.max_bytes - self._tail_bytes
        cost = sum(map(len, lines)) + LINE_OVERHEAD * len(lines)
        if self._logged + cost <= head:
            self._logged += cost
            return lines, None
        kept = []
        for line in lines:
            if self._logged + len(line) + LINE_OVERHEAD > head:
                break
            self._logged += len(line) + LINE_OVERHEAD
            kept.append(line)
        self._over = lines[len(kept):]
        self._cut = [0, 0]
        cap = f"{self.max_bytes / MIB:g} MiB"
        return kept, (f"[mycli: the log reached its cap of {cap} here (the server's MYCLI_MAX_LOG_MB); "
                      f"what follows is kept only in its last {human_size(self._tail_bytes)}, at the end]")

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

