"""Running the embedded local engine: `mycli server` in the foreground, or in the background
on demand when nothing else is configured, so a new user's first command just works.

One server per state dir (a lock file says who owns it). The server writes `server.json`
(url, pid) when it listens, and keeps its endpoint and key in the `local` profile of the
global config, so clients find it without asking the user anything.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Mapping

from . import config
from .engine_notes import StartProgress, start_error, warn_runtime_mismatch
from .errors import ConfigError, ConnectionFailed, MycliError

KEY_HASH_FILE = "api_key_hash"  # orchestrator.server.KEY_HASH_FILE, without importing it at start-up

READY_FILE = "server.json"
LOCK_FILE = "server.lock"
LOG_FILE = "server.log"
START_LOCK_FILE = "start.lock"
START_TIMEOUT = 60.0  # a container runtime's probe may import its image and run a container first


class ServerRunning(MycliError):
    pass


def run_server(
    host: str,
    port: int,
    state_dir: Path,
    engine: str = "local",
    quiet: bool = False,
    environ: Mapping[str, str] = os.environ,
) -> int:
    """Serve until SIGINT/SIGTERM. Returns the exit code."""
    import logging

    from orchestrator.server import LocalServer, build_local_app, write_ready_file

    state_dir = _private_state_dir(state_dir)
    home_dir = config.engine_state_dir(environ)  # where the home's clients look for their engine
    # A local engine is the engine of its MYCLI_HOME, whatever --state-dir says: it holds the
    # home's lock too and leaves its address there, so later commands use it (not a second one).
    is_home_engine = engine == "local"
    moved = is_home_engine and state_dir.resolve() != home_dir.resolve()
    if moved:
        _private_state_dir(home_dir)
    home_lock = _acquire_lock(home_dir) if moved else None
    try:
        lock = _acquire_lock(state_dir)
    except ServerRunning:
        if home_lock:
            home_lock.close()
        raise
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from orchestrator.errors import ApiError

    try:
        app, new_key, engine_obj = build_local_app(state_dir, environ, engine)
    except ApiError as exc:  # e.g. a misconfigured runtime: the orchestrator's words, one line
        _release(lock, home_lock)
        raise ConfigError(exc.message) from None
    try:
        server = LocalServer((host, port), app, engine)
    except OSError as exc:
        _release(lock, home_lock)
        hint = "pick another --port" if exc.errno == errno.EADDRINUSE else "check --host (an address of this machine)"
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}; {hint}") from None
    endpoint = f"{server.url}/execute"
    # The home's engine owns the `local` profile; an AWS-engine server gets its own (local-ecs),
    # so it never replaces the embedded engine's key.
    profile = config.LOCAL_PROFILE if is_home_engine else f"{config.LOCAL_PROFILE}-{engine}"
    if not environ.get("API_KEY_HASH"):
        # Written on every start, not only with a new key: a restart on another port must move
        # its clients too (the key stays; the endpoint is where this process listens now).
        key = new_key or _saved_key(profile, environ)
        if not new_key and not _key_matches(key, state_dir):
            # The client key was lost or replaced: make a new one rather than lock the user out.
            (state_dir / KEY_HASH_FILE).unlink(missing_ok=True)
            server.server_close()
            _release(lock, home_lock)
            return run_server(host, port, state_dir, engine, quiet, environ)
        config.update_profile(profile, {"api_endpoint": endpoint, "api_key": key}, environ)
    write_ready_file(state_dir / READY_FILE, server)
    if moved:
        _write_pointer(home_dir / READY_FILE, server.url, state_dir)

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    if not quiet:
        runtime = getattr(engine_obj, "runtime", "aws")
        print(f"mycli server listening on {endpoint} (engine: {engine}, runtime: {runtime})", flush=True)
        if getattr(engine_obj, "runtime_reason", None):
            print(f"  runtime: {runtime}: {engine_obj.runtime_reason}", flush=True)
        print(f"  state: {state_dir}", flush=True)
        if new_key:
            print(f"  a new API key was saved to {config.config_path(environ)} (profile '{profile}')", flush=True)
        print("  stop with Ctrl-C", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        shutdown = getattr(engine_obj, "shutdown", None)
        if shutdown:
            shutdown()
        (state_dir / READY_FILE).unlink(missing_ok=True)
        if moved:
            (home_dir / READY_FILE).unlink(missing_ok=True)
        _release(lock, home_lock)
    return 0


def _release(*locks) -> None:
    for lock in locks:
        if lock is not None:
            lock.close()


def _write_pointer(path: Path, url: str, state_dir: Path) -> None:
    """The home's ready file for an engine whose state is elsewhere (--state-dir)."""
    from orchestrator.statedir import write_private

    write_private(path, json.dumps({"url": url, "pid": os.getpid(), "state_dir": str(state_dir.resolve())}))


def _key_matches(key: str | None, state_dir: Path) -> bool:
    from orchestrator.auth import Authenticator, parse_hashes
    from orchestrator.errors import ApiError

    try:
        Authenticator(parse_hashes((state_dir / KEY_HASH_FILE).read_text())).check(key)
        return True
    except (OSError, ApiError):
        return False


def _saved_key(profile: str, environ: Mapping[str, str]) -> str | None:
    try:
        return config.profile_values(profile, environ).get("api_key")
    except ConfigError:
        return None


def _saved_local_key(environ: Mapping[str, str]) -> str | None:
    return _saved_key(config.LOCAL_PROFILE, environ)


def _private_state_dir(state_dir: Path) -> Path:
    """The state dir, created or checked private to this user (see orchestrator/statedir.py)."""
    from orchestrator.errors import ApiError
    from orchestrator.statedir import prepare_state_dir

    try:
        return prepare_state_dir(Path(state_dir))
    except ApiError as exc:
        raise ConfigError(exc.message) from None


def _open_state_file(path: Path, mode: str):
    """A file in the state dir, opened for appending: never through a link, created 0600."""
    from orchestrator.errors import ApiError
    from orchestrator.statedir import open_private

    try:
        return os.fdopen(open_private(path, os.O_RDWR | os.O_CREAT | os.O_APPEND), mode)
    except ApiError as exc:
        raise ConfigError(exc.message) from None


def _acquire_lock(state_dir: Path):
    fh = _open_state_file(state_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        info = _read_ready(state_dir)
        where = f" at {info['url']} (pid {info['pid']})" if info else ""
        raise ServerRunning(f"a mycli server is already running for {state_dir}{where}; stop it with: mycli server stop") from None
    fh.seek(0)
    fh.truncate()
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def _read_ready(state_dir: Path) -> dict | None:
    try:
        data = json.loads((state_dir / READY_FILE).read_text())
        return data if isinstance(data, dict) and "url" in data and "pid" in data else None
    except (OSError, ValueError):
        return None


def health(url: str, timeout: float = 1.0) -> dict | None:
    """The engine's `GET /health` answer (engine, version, runtime and why), None if it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as resp:
            body = json.loads(resp.read() or b"{}") if resp.status == 200 else None
            return body if isinstance(body, dict) else None
    except (OSError, ValueError):
        return None


def running_server(environ: Mapping[str, str] = os.environ) -> dict | None:
    """{url, pid, health} of the embedded engine if it is up and answering, else None."""
    info = _read_ready(config.engine_state_dir(environ))
    answer = health(info["url"]) if info else None
    return None if answer is None else {**info, "health": answer}


def ensure_embedded(environ: Mapping[str, str] = os.environ, announce=None) -> config.Endpoint:
    """The embedded engine's endpoint, starting the engine in the background if needed.

    `announce(line)` is called once when a new engine process had to be started. Clients that
    arrive together take turns on a start lock, so exactly one of them starts the engine and
    the others use it.
    """
    state_dir = config.engine_state_dir(environ)
    info = running_server(environ)
    started = False
    if info is None:
        _private_state_dir(state_dir)
        with _open_state_file(state_dir / START_LOCK_FILE, "a") as start_lock:
            fcntl.flock(start_lock, fcntl.LOCK_EX)
            info = running_server(environ)  # someone else may have started it while we waited
            if info is None:
                info = _start_background(state_dir, environ, announce)
                started = True
                if announce:
                    announce(f"→ Started the embedded local engine at {info['url']} (stop it with: mycli server stop)")
    if not started:  # one this client started has the runtime asked for
        warn_runtime_mismatch(info, environ, announce)
    key = _saved_local_key(environ)
    if not key:
        raise ConfigError(
            f"the embedded engine at {info['url']} has no client key in {config.config_path(environ)}; "
            "run: mycli server stop, then try again"
        )
    return config.Endpoint(url=f"{info['url']}/execute", api_key=key, profile=config.LOCAL_PROFILE, source="embedded")


def _start_background(state_dir: Path, environ: Mapping[str, str], announce=None) -> dict:
    """Start the engine and wait until it answers; what it says it is waiting for on the way
    (a runtime's daemon that does not answer) is passed on to `announce`, so the user does not
    wait in silence, and then which runtime it settled on, and why."""
    log = _open_state_file(state_dir / LOG_FILE, "ab")
    start_offset = log.seek(0, os.SEEK_END)
    progress = StartProgress(state_dir / LOG_FILE, start_offset, announce)
    argv = [sys.executable, "-m", "mycli_magic.cli", "server", "--port", "0", "--state-dir", str(state_dir), "--quiet"]
    env = dict(environ)
    env.pop("API_KEY_HASH", None)  # the embedded engine keeps its own key
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env, start_new_session=True, close_fds=True)
    log.close()
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        progress.poll()
        info = _read_ready(state_dir)
        answer = health(info["url"]) if info and info.get("pid") == proc.pid else None
        if answer is not None:
            progress.settled(answer)
            return info
        code = proc.poll()
        if code is not None:
            info = running_server(environ)  # a server started by hand may hold the state dir
            if info:
                return info
            reason = start_error(state_dir / LOG_FILE, start_offset) or f"exit {code}"
            raise ConnectionFailed(f"the embedded local engine failed to start: {reason}; see {state_dir / LOG_FILE}")
        time.sleep(0.05)
    raise ConnectionFailed(f"the embedded local engine did not start within {START_TIMEOUT:.0f} s; see {state_dir / LOG_FILE}")


def _reap(pid: int) -> None:
    """Collect `pid`'s exit if this process started it (a notebook kernel starts the engine, then
    stops it with `%mycli server stop`): else it stays a zombie, which signal 0 still finds."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent (or init) reaps it


def _server_holds_lock(state_dir: Path) -> bool:
    """Whether a live server holds the state dir's lock: the truth, unlike a leftover server.json."""
    try:
        fh = _open_state_file(state_dir / LOCK_FILE, "a")
    except (OSError, ConfigError):
        return False
    with fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


def stop_server(environ: Mapping[str, str] = os.environ, timeout: float = 15.0) -> str:
    """Stop the engine serving the default state dir. Returns a one-line report."""
    state_dir = config.engine_state_dir(environ)
    info = _read_ready(state_dir)
    if not info or not _server_holds_lock(state_dir):
        (state_dir / READY_FILE).unlink(missing_ok=True)  # a leftover of a crash: its pid may be reused
        return "No embedded local engine is running."
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        (state_dir / READY_FILE).unlink(missing_ok=True)
        return "No embedded local engine is running."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return f"✓ Stopped the embedded local engine (pid {pid})."
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return f"✓ Killed the embedded local engine (pid {pid}); it did not stop within {timeout:.0f} s."
