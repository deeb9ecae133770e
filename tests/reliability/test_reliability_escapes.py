"""A hostile endpoint puts terminal escape sequences in everything it answers: the CLI and
terminal IPython (the text view) must show metadata with its control characters escaped, and
log content with its colours but no other escape sequence (unless --raw)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mycli_magic.safe_text import clean_log, escape_controls
from tests.support.cli import Cli

EID = "6b10aaaa0001"
EID_HOSTILE = "6b10aaaa0002"  # its status answer names it with an escape sequence in the ID
OSC52 = "\x1b]52;c;cHduZWQ=\x07"  # writes "pwned" to the clipboard
TITLE = "\x1b]0;pwned title\x1b\\"
CLEAR = "\x1b[2J\x1b[H"
RESET = "\x1bc"
C1 = "\x9b2J\x9d0;c1 title\x9c"
BIDI = "\u202e"  # reverses what follows it on screen: escaped in metadata (log text may hold it)
HOSTILE = OSC52 + TITLE + CLEAR + RESET + C1 + "\x07"
COLOURED = "\x1b[31mred\x1b[0m"

EXECUTION = {
    "execution_id": EID, "task_arn": f"arn:aws:ecs:task/{CLEAR}x", "status": "STOPPED",
    "desired_status": "STOPPED" + RESET, "created_at": "2026-01-01T00:00:00Z" + C1, "started_at": None,
    "stopped_at": None, "duration_seconds": 1.5, "exit_code": 0, "stopped_reason": "done" + OSC52,
    "stop_code": "EssentialContainerExited", "command": "echo hi" + OSC52, "repo": "https://x/r" + BIDI,
    "branch": "main" + CLEAR, "image": "alpine" + C1, "skip_git": False, "timeout_seconds": 60,
    "env_keys": ["K" + TITLE], "engine": "local" + OSC52, "runtime": "host" + RESET, "log_stream": "s" + CLEAR,
}
LOG_LINE = f"{COLOURED} plain {HOSTILE} end"


class Hostile(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        action = body.get("action")
        if body.get("execution_id") == "bad0bad0bad0":
            return self._answer(400, {"error": "invalid request: nope" + HOSTILE})
        if action == "logs":
            events = [] if body.get("next_token") else [{"timestamp": 1767225600000, "message": LOG_LINE}]
            return self._answer(200, {"execution_id": EID, "status": "STOPPED", "exit_code": 0, "events": events,
                                      "next_token": "1", "complete": True})
        if action == "list" or body.get("execution_id") == EID_HOSTILE:
            named = {**EXECUTION, "execution_id": EID + TITLE}
            return self._answer(200, {"executions": [EXECUTION, named]} if action == "list" else named)
        if action == "exec" and body.get("dry_run"):
            return self._answer(200, {"dry_run": True, "script": f"echo {HOSTILE}\n", "engine": "local" + OSC52,
                                      "runtime": "host" + TITLE})
        return self._answer(200, EXECUTION)

    def _answer(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def hostile_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/execute"
    server.shutdown()
    server.server_close()


def assert_inert(text: str, where: str) -> None:
    """Nothing in `text` can drive a terminal: every ESC starts a colour (SGR), no C1, no BEL,
    no bidi override."""
    not_colour = [text[m.start():m.start() + 12] for m in re.finditer("\x1b", text)
                  if not re.match(r"\x1b\[[0-9;]*m", text[m.start():])]
    assert not not_colour, f"{where}: escape sequences reached the terminal: {not_colour}"
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text), \
        f"{where}: control characters reached the terminal: {text!r}"


@pytest.mark.parametrize("hostile", [OSC52, TITLE, CLEAR, RESET, C1, BIDI, "\x07", "a\nb", "\x1b"])
def test_metadata_is_shown_with_every_control_character_escaped(hostile):
    shown = escape_controls(f"id {hostile} end")
    assert_inert(shown, repr(hostile))
    assert shown.startswith("id ") and shown.endswith(" end") and "\\" in shown  # visible, not dropped


def test_log_content_keeps_colours_and_loses_every_other_sequence():
    cleaned = clean_log(LOG_LINE)
    assert cleaned.startswith(COLOURED + " plain ") and cleaned.endswith(" end")
    assert_inert(cleaned, "clean_log")
    assert "pwned" not in cleaned and "title" not in cleaned
    assert clean_log("50%\r75%\tdone") == "50%\r75%\tdone"  # progress bars stay
    assert clean_log(LOG_LINE, raw=True) == LOG_LINE


@pytest.mark.parametrize("args", [
    ["status", EID], ["status", EID_HOSTILE], ["stop", EID_HOSTILE], ["list"], ["logs", EID], ["logs", "-f", EID], ["stop", EID],
    ["exec", "--skip-git", "echo hi"], ["exec", "--skip-git", "--wait", "echo hi"],
    ["exec", "--skip-git", "--dry-run", "echo hi"], ["status", "bad0bad0bad0"],
])
def test_the_cli_prints_what_a_hostile_endpoint_sends_inert(hostile_url, tmp_path, args):
    cli = Cli(tmp_path / "home", extra_env={"MYCLI_API_ENDPOINT": hostile_url, "MYCLI_API_KEY": "k"})
    result = cli.run(*args, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert_inert(result.stdout + result.stderr, " ".join(args))
    if args[0] == "logs":
        assert COLOURED + " plain " in result.stdout  # colours survive
    if args[0] in ("status", "list"):
        assert "\\x1b" in result.stdout + result.stderr  # the metadata (or error) is there, escaped


def test_raw_logs_pass_everything_through(hostile_url, tmp_path):
    """The check above can see what it guards against: --raw lets it all through."""
    cli = Cli(tmp_path / "home", extra_env={"MYCLI_API_ENDPOINT": hostile_url, "MYCLI_API_KEY": "k"})
    result = cli.run("logs", "--raw", EID)
    assert LOG_LINE in result.stdout
    with pytest.raises(AssertionError):
        assert_inert(result.stdout, "raw")


def test_terminal_ipython_shows_a_hostile_endpoint_inert(hostile_url, tmp_path):
    script = tmp_path / "cells.ipy"
    script.write_text(
        "%load_ext mycli_magic\n"
        f"print(repr(get_ipython().run_line_magic('mycli', 'status {EID}')))\n"
        "print(repr(get_ipython().run_line_magic('mycli', 'list')))\n"
        f"%mycli logs {EID}\n"
        f"%mycli stop {EID}\n"
        "get_ipython().run_cell_magic('mycli', '--skip-git', 'echo hi')\n"
        "print('END OF CELLS')\n"
    )
    (tmp_path / "ipython").mkdir()
    env = Cli(tmp_path / "home", extra_env={"MYCLI_API_ENDPOINT": hostile_url, "MYCLI_API_KEY": "k",
                                            "MYCLI_DISPLAY": "text"}).env()
    result = subprocess.run([sys.executable, "-m", "IPython", "--quick", "--no-banner", "--colors=NoColor",
                             f"--ipython-dir={tmp_path / 'ipython'}", str(script)],
                            capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert "END OF CELLS" in result.stdout, result.stdout + result.stderr
    assert_inert(result.stdout + result.stderr, "terminal IPython")
    assert COLOURED + " plain " in result.stdout and "▶ mycli execution" in result.stdout
