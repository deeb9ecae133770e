"""Connections for the local HTTP front: one thread waits on every socket, worker threads answer.

A connection costs a thread only while it has a complete request header to answer. Until then
(a slow client, a keep-alive connection between requests, a peer that sent half a header and
vanished) it is a socket in a selector and a few bytes of buffer, with a deadline. So a flood of
half-open connections cannot exhaust threads or stall `/health`:
- at most `max_connections` are open; at the limit the one idle the longest is closed;
- a request header must arrive whole within HEADER_SECONDS, and a connection may sit idle
  between requests for IDLE_SECONDS;
- at most `max_workers` requests are answered at once (a long-polling `logs` call holds a
  worker for up to 20 s); more wait in order.
Peers that hang up or reset are closed without a word; each kind of problem is logged at most
once a minute, with a count.
"""

from __future__ import annotations

import logging
import queue
import resource
import selectors
import socket
import threading
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .ratelog import RateLimitedLog

MAX_CONNECTIONS = 1024
MAX_WORKERS = 256
HEADER_SECONDS = 10.0
IDLE_SECONDS = 60.0
REQUEST_SECONDS = 60.0  # a worker's socket timeout while reading a body or writing an answer
MAX_HEADER_BYTES = 16 * 1024
ACCEPTS_PER_WAKE = 64
WORKER_IDLE_SECONDS = 30.0
_HEADER_ENDS = (b"\r\n\r\n", b"\n\n")
_TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: application/json\r\n"
              b"Content-Length: 44\r\nConnection: close\r\n\r\n"
              b'{"error": "request header is too large"}    ')

log = logging.getLogger("mycli.server")
quiet_log = RateLimitedLog(log)


class Connection:
    __slots__ = ("sock", "addr", "buf", "since", "partial")

    def __init__(self, sock: socket.socket, addr, buf: bytes = b""):
        self.sock, self.addr, self.buf = sock, addr, bytearray(buf)
        self.since = time.monotonic()  # when it last became idle, or its request began
        self.partial = bool(buf)  # part of a request has arrived: the header deadline applies


# answer(connection) -> whether to keep the connection for another request
Answer = Callable[[Connection], bool]


class ConnectionServer:
    def __init__(self, address: tuple[str, int], answer: Answer, max_connections: int = MAX_CONNECTIONS,
                 max_workers: int = MAX_WORKERS):
        self._answer = answer
        self.max_connections = min(max_connections, _raise_fd_limit() // 2)
        family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.listener = socket.create_server(address, family=family, backlog=1024)
        self.listener.setblocking(False)
        self.server_address = self.listener.getsockname()[:2]
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.listener, selectors.EVENT_READ, "listen")
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._waiting: OrderedDict[int, Connection] = OrderedDict()  # by fd, longest idle first
        self._busy = 0
        self._returned: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self._workers = ThreadPoolExecutor(max_workers, thread_name_prefix="http")
        self._stopped = threading.Event()

    # the selector thread ---------------------------------------------------------------------

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        next_sweep = time.monotonic() + 1.0
        while not self._stopped.is_set():
            for key, _ in self._selector.select(poll_interval):
                if key.data == "listen":
                    self._accept()
                elif key.data == "wake":
                    self._take_returned()
                else:
                    self._read(key.data)
            now = time.monotonic()
            if now >= next_sweep:
                self._expire(now)
                next_sweep = now + 1.0

    def shutdown(self) -> None:
        self._stopped.set()
        self._wake()

    def server_close(self) -> None:
        self._stopped.set()
        self._workers.shutdown(wait=False)
        for conn in list(self._waiting.values()):
            self._close(conn)
        self._selector.close()
        self.listener.close()
        self._wake_r.close()
        self._wake_w.close()

    def _accept(self) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            try:
                sock, addr = self.listener.accept()
            except BlockingIOError:
                return
            except OSError as exc:  # out of descriptors: make room, try again on the next wake
                quiet_log.warning("accept", "cannot accept a connection (%s); closing idle ones", exc.strerror)
                self._shed(max(1, len(self._waiting) // 10))
                return
            if len(self._waiting) + self._busy >= self.max_connections and not self._shed(1):
                quiet_log.warning("full", "%d requests are being answered; refusing new connections", self._busy)
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._add(Connection(sock, addr))

    def _add(self, conn: Connection) -> None:
        if conn.buf and self._dispatch_if_complete(conn):
            return
        self._waiting[conn.sock.fileno()] = conn
        self._selector.register(conn.sock, selectors.EVENT_READ, conn)

    def _read(self, conn: Connection) -> None:
        try:
            data = conn.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the peer hung up (or reset): nothing to answer
            self._forget(conn)
            self._close(conn)
            return
        if not conn.partial:
            conn.partial, conn.since = True, time.monotonic()
        conn.buf += data
        self._waiting.move_to_end(conn.sock.fileno())
        if self._dispatch_if_complete(conn, registered=True):
            return
        if len(conn.buf) > MAX_HEADER_BYTES:
            quiet_log.warning("header", "closed a connection whose request header passed %d bytes", MAX_HEADER_BYTES)
            self._forget(conn)
            try:
                conn.sock.send(_TOO_LARGE)
            except OSError:
                pass
            self._close(conn)

    def _dispatch_if_complete(self, conn: Connection, registered: bool = False) -> bool:
        """Hand a connection whose request header is complete to a worker (off the selector first)."""
        if not any(end in conn.buf for end in _HEADER_ENDS):
            return False
        if registered:
            self._forget(conn)
        self._busy += 1
        self._workers.submit(self._serve, conn)
        return True

    def _forget(self, conn: Connection) -> None:
        self._waiting.pop(conn.sock.fileno(), None)
        self._selector.unregister(conn.sock)

    def _expire(self, now: float) -> None:
        late = [conn for conn in self._waiting.values()
                if now - conn.since > (HEADER_SECONDS if conn.partial else IDLE_SECONDS)]
        for conn in late:
            self._forget(conn)
            self._close(conn)
        if late:
            quiet_log.warning("timeout", "closed %d connections that sent no complete request in time", len(late))

    def _shed(self, count: int) -> bool:
        """Close the `count` connections idle the longest; False when none is idle."""
        shed = 0
        while shed < count and self._waiting:
            _, conn = self._waiting.popitem(last=False)
            self._selector.unregister(conn.sock)
            self._close(conn)
            shed += 1
        if shed:
            quiet_log.warning("shed", "at the limit of %d connections: closed %d idle ones", self.max_connections, shed)
        return shed > 0

    def _take_returned(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass
        while True:
            try:
                conn = self._returned.get_nowait()
            except queue.Empty:
                return
            self._busy -= 1
            if conn.sock.fileno() < 0:
                continue  # closed by its worker
            if self._stopped.is_set():
                self._close(conn)
                continue
            conn.sock.setblocking(False)
            conn.since, conn.partial = time.monotonic(), bool(conn.buf)
            self._add(conn)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    @staticmethod
    def _close(conn: Connection) -> None:
        try:
            conn.sock.close()
        except OSError:
            pass

    # worker threads ----------------------------------------------------------------------------

    def _serve(self, conn: Connection) -> None:
        keep = False
        try:
            conn.sock.setblocking(True)
            conn.sock.settimeout(REQUEST_SECONDS)
            keep = self._answer(conn)
        except (ConnectionError, TimeoutError) as exc:
            quiet_log.warning("peer", "a client went away before its answer was sent (%s)", type(exc).__name__)
        except OSError as exc:
            quiet_log.warning("peer", "a connection failed (%s)", exc.strerror or type(exc).__name__)
        except Exception:  # a bug: say so, once a minute, but keep serving
            quiet_log.error("bug", "unexpected error while answering a request", exc_info=True)
        if not keep:
            self._close(conn)
        self._returned.put(conn)
        self._wake()


def _raise_fd_limit() -> int:
    """Lift this process's soft limit on open files to its hard limit (no privilege needed):
    connections and running executions each hold descriptors. Returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    return soft
