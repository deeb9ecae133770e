"""The process that supervises every local execution, run as its own small program (stdlib only).

The engine starts it once (`python3 -I -S local_supervisor.py FD FD`). It is a child subreaper
(PR_SET_CHILD_SUBREAPER), and so is every script it starts (the attribute survives execve): a
`setsid … &` child or a double-forked daemon is adopted by its script instead of by init, so
while the script runs, everything it started is below it and a stop or a timeout reaches it.
When the script ends, what it left is adopted by this process, which kills it (as a container's
end would) before it reports the script's exit status — so the engine's read of the output pipe
always reaches its end. If the engine goes away, every execution is ended: its process tree is
killed, then its *cleanup* runs (for a container run, the removal of the container by name,
which killing the runtime's client does not do — a docker container belongs to the daemon).

A script is started by a child forked ahead of time (the *spare*), which takes the request and
execs: no fork, no interpreter start and no other process's wake-up on the way from `exec` to a
running script, and no process per execution besides the script itself. The spare hands the
request's cleanup to this process (on a pipe of its own) before it reports its pid or execs, so
an engine killed while a container is still being created still has it removed.

Wire format, over two SOCK_SEQPACKET sockets. Requests (read by the spare): a JSON spec
{argv, cwd, env, umask, cleanup: null or {argv, env}} with three file descriptors: the script's
stdin, its stdout/stderr, and the write end of a close-on-exec pipe on which the spare writes
`PID` and, only if it fails, `ERRNO STEP`. Registry (read here): `run PID` with the engine's end
of the run's control socket, or `failed PID`; its EOF means the engine is gone. On a control socket: `exit WAITSTATUS` from
here; `term` or `kill` from the engine (signal every descendant of the script); its EOF means
the engine gave up on the run.
"""

from __future__ import annotations

import array
import ctypes
import gc
import json
import os
import selectors
import signal
import socket
import sys
import time

PR_SET_CHILD_SUBREAPER = 36
MAX_SPEC_BYTES = 1 << 20
SWEEP_SECONDS = 1.0
SPARE_IDLE = 0.01  # seconds of quiet after which the next spare is forked
SPARE_FAILED = 70  # a spare's exit code when it broke before running anything (backs off forking)
MAX_UNCLAIMED = 256
MAX_CLEANUP_BYTES = 32 * 1024  # a cleanup spec fits a pipe's buffer, so the spare never blocks on it
_LIBC = ctypes.CDLL(None, use_errno=True)


def become_subreaper() -> None:
    if _LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class Run:
    __slots__ = ("pid", "control", "status", "cleanup")

    def __init__(self, pid: int, control: socket.socket, cleanup: dict | None = None):
        self.pid, self.control, self.status, self.cleanup = pid, control, None, cleanup


class Supervisor:
    def __init__(self, server: socket.socket, registry: socket.socket):
        become_subreaper()
        self.server = server  # requests: only spares read it
        self.registry = registry  # the engine says which spare became which run
        self.runs: dict[int, Run] = {}  # by script pid, until its exit is reported
        self.ended: list[Run] = []  # scripts that exited, waiting for their leftovers to die
        self.spare: int | None = None
        self.notes: dict[int, int] = {}  # spare pid → the read end of the pipe its cleanup comes on
        self.cleaners: set[int] = set()  # cleanups running (not leftovers to kill)
        self.unclaimed: dict[int, int] = {}  # wait statuses of spares that ended before registering
        self.spare_failures = 0
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd sees exits
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.wake_r, selectors.EVENT_READ, None)
        self.selector.register(registry, selectors.EVENT_READ, None)

    def loop(self) -> None:
        """The next spare is forked when a request waits for one, when a run has just been
        reported ended, or once things are quiet (SPARE_IDLE) — not while a script that just
        started competes for the CPU."""
        gc.freeze()  # spares share these pages instead of copying them on a collection
        self._fork_spare()
        while True:
            waiting_for_spare = self.spare is None
            if waiting_for_spare:
                self.selector.register(self.server, selectors.EVENT_READ, None)
            events = self.selector.select(SPARE_IDLE if waiting_for_spare else SWEEP_SECONDS)
            if waiting_for_spare:
                self.selector.unregister(self.server)
                if not events or any(key.fileobj is self.server for key, _ in events):
                    self._fork_spare()
            for key, _ in events:
                if key.fileobj == self.wake_r:
                    _drain(self.wake_r)
                elif key.fileobj is self.server:
                    continue  # a request waits: the spare forked above takes it
                elif key.fileobj is self.registry:
                    if not self._register():
                        return self._end_everything()
                else:
                    self._command(key.data)
            self._reap()
            if self._finish_ended() and self.spare is None:
                self._fork_spare()

    # starting -----------------------------------------------------------------------------------

    def _fork_spare(self) -> None:
        if self.spare_failures:  # a spare that keeps dying must not become a fork loop
            time.sleep(min(5.0, 0.1 * 2 ** self.spare_failures))
        note_r, note_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                _spare(self.server, note_w)
            except BaseException:  # noqa: BLE001 — never return into the parent's loop
                code = SPARE_FAILED
            os._exit(code)
        os.close(note_w)
        self.notes[pid] = note_r
        self.spare = pid

    def _register(self) -> bool:
        """`run PID` with the run's control socket, or `failed PID`; False when the engine is gone."""
        fds = array.array("i")
        try:
            data, ancdata, _, _ = self.registry.recvmsg(64, socket.CMSG_SPACE(fds.itemsize))
        except OSError:
            return False
        for level, kind, payload in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
        if not data:
            return False
        word, _, pid = data.decode().partition(" ")
        pid = int(pid)
        if pid == self.spare:
            self.spare = None  # it became a script (or failed to): the next one is forked now
        cleanup = self._take_note(pid)
        if word != "run" or len(fds) != 1:
            for fd in fds:
                os.close(fd)
            self.unclaimed.pop(pid, None)
            return True
        self.spare_failures = 0
        run = self.runs[pid] = Run(pid, socket.socket(fileno=fds[0]), cleanup)
        self.selector.register(run.control, selectors.EVENT_READ, run)
        if pid in self.unclaimed:  # a very short script ended before the engine registered it
            run.status = self.unclaimed.pop(pid)
            self.ended.append(run)
        return True

    # running and ending ------------------------------------------------------------------------

    def _command(self, run: Run) -> None:
        try:
            data = run.control.recv(4096)
        except OSError:
            data = b""
        if not data:  # the engine gave up on this run (or is gone): end it
            self.selector.unregister(run.control)
            run.control.close()
            run.control = None
            if run.status is None:
                _signal_tree(run.pid, signal.SIGKILL)
            if run.cleanup is not None:
                self.cleaners.add(_start(run.cleanup))
                run.cleanup = None
            return
        if run.status is None:
            for word in data.split():
                _signal_tree(run.pid, signal.SIGTERM if word == b"term" else signal.SIGKILL)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self.cleaners.discard(pid)
            run = self.runs.get(pid)
            if run is not None:
                if run.status is None:
                    run.status = status
                    self.ended.append(run)
            elif pid == self.spare:  # it ran a script (its registration is on the way) or it failed
                self.spare = None
                self.unclaimed[pid] = status
                if len(self.unclaimed) > MAX_UNCLAIMED:
                    self._take_note(next(iter(self.unclaimed)))
                    self.unclaimed.pop(next(iter(self.unclaimed)))
                if os.waitstatus_to_exitcode(status) == SPARE_FAILED:
                    self.spare_failures += 1
                    self._take_note(pid)  # it read no request: no registration will come
            # anything else was a leftover, killed below

    def _finish_ended(self) -> bool:
        """Kill what the ended scripts left (adopted by us); report their ends once none is
        left. Whether any end was reported."""
        keep = {pid for pid, run in self.runs.items() if run.status is None} | self.cleaners
        if self.spare is not None:
            keep.add(self.spare)
        leftovers = [pid for pid in _children(os.getpid()) if pid not in keep]
        for pid in leftovers:
            _signal_tree(pid, signal.SIGKILL)
        if leftovers or not self.ended:
            return False  # their deaths wake us again
        for run in self.ended:
            if run.control is not None:
                _send(run.control, b"exit %d\n" % run.status)
                self.selector.unregister(run.control)
                run.control.close()
            del self.runs[run.pid]
        self.ended = []
        return True

    def _end_everything(self) -> None:
        """The engine is gone: kill every run's tree (and a spare's, which may have exec'd a
        script not registered yet), wait until none is left, then run their cleanups."""
        for pid in list(self.runs):
            _signal_tree(pid, signal.SIGKILL)
        started = False
        while True:
            others = [pid for pid in _children(os.getpid()) if pid not in self.cleaners]  # zombies too
            if not started and not others:  # every run's tree is gone (and reaped), every note written
                cleanups = [run.cleanup for run in self.runs.values() if run.cleanup is not None]
                cleanups += [c for c in map(self._take_note, list(self.notes)) if c is not None]
                self.cleaners.update(_start(cleanup) for cleanup in cleanups)
                started = True
            for pid in others:
                _signal_tree(pid, signal.SIGKILL)
            try:
                pid, _ = os.waitpid(-1, 0)
            except ChildProcessError:
                return
            self.cleaners.discard(pid)

    def _take_note(self, pid: int) -> dict | None:
        """The cleanup a spare handed over (None: none, or it had not read a request yet)."""
        fd = self.notes.pop(pid, None)
        if fd is None:
            return None
        try:
            data = os.read(fd, MAX_CLEANUP_BYTES + 1)
        except BlockingIOError:
            data = b""
        finally:
            os.close(fd)
        try:
            cleanup = json.loads(data) if data else None
        except ValueError:
            return None
        return cleanup if isinstance(cleanup, dict) else None


def _spare(server: socket.socket, note_w: int) -> None:
    """A child waiting to become one script: everything but the exec is done ahead, so only its
    own wake-up lies between the engine's request and the script."""
    signal.set_wakeup_fd(-1)
    low, high = sorted((server.fileno(), note_w))
    os.closerange(3, low)  # the other runs' sockets, the registry
    os.closerange(low + 1, high)
    os.closerange(high + 1, 1 << 20)
    for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):  # Python's own dispositions
        signal.signal(sig, signal.SIG_DFL)
    become_subreaper()  # kept across execve: the script adopts what its children orphan
    json.loads('{"argv": ["sh"], "cwd": "/", "env": {"PATH": "/bin"}, "umask": null}')  # warm the pages
    fds = array.array("i")
    data, ancdata, _, _ = server.recvmsg(MAX_SPEC_BYTES, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if not data or len(fds) != 3:
        return  # the engine closed its end
    stdin_fd, stdout_fd, err_w = fds
    spec = json.loads(data)
    cleanup = json.dumps(spec.get("cleanup")).encode()
    if spec.get("cleanup") and len(cleanup) <= MAX_CLEANUP_BYTES:  # before anything it names can exist
        os.write(note_w, cleanup)
    os.close(note_w)
    step = "exec"
    try:
        os.write(err_w, b"%d\n" % os.getpid())
        os.setsid()
        os.dup2(stdin_fd, 0)
        os.dup2(stdout_fd, 1)
        os.dup2(stdout_fd, 2)
        for fd in (stdin_fd, stdout_fd, server.fileno()):
            os.close(fd)
        os.set_inheritable(err_w, False)
        step = "chdir"
        os.chdir(spec["cwd"])
        if spec.get("umask") is not None:
            os.umask(spec["umask"])
        step = "exec"
        os.execvpe(spec["argv"][0], spec["argv"], spec["env"])
    except OSError as exc:
        os.write(err_w, b"%d %s" % (exc.errno or 0, step.encode()))
        os._exit(127)


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as fh:
            return [int(p) for p in fh.read().split()]
    except FileNotFoundError:  # a kernel without CONFIG_PROC_CHILDREN
        return [p for p, parent in _parents().items() if parent == pid]


def _parents() -> dict[int, int]:
    parents = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as fh:
                    parents[int(name)] = int(fh.read().rsplit(b")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def _signal_tree(root: int, sig: int) -> None:
    """`root` and every descendant; the tree is read first so a killed parent's orphans are
    signalled too (they would be adopted by a subreaper, but not before being missed)."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    found, stack = [root], [root]
    while stack:
        for child in children.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    for pid in found:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _start(cleanup: dict) -> int:
    """Start a run's cleanup {argv, env}: a child of ours, its output discarded."""
    pid = os.fork()
    if pid == 0:
        try:
            signal.set_wakeup_fd(-1)
            for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD):
                signal.signal(sig, signal.SIG_DFL)
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.closerange(3, 1 << 20)
            os.execvpe(cleanup["argv"][0], cleanup["argv"], cleanup["env"])
        finally:
            os._exit(127)
    return pid


def _send(control: socket.socket, message: bytes) -> None:
    try:
        control.sendall(message)
    except OSError:
        pass  # the engine is gone; the work is done either way


def main(server_fd: int, registry_fd: int) -> None:
    Supervisor(socket.socket(fileno=server_fd), socket.socket(fileno=registry_fd)).loop()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
