"""The magic in a real ipykernel, driven over ZMQ the way frontends drive it: the panel for a
frontend that renders widgets (its requests carry a cellId), text for a headless client
(nbval, nbconvert), and the kernel's interrupt stopping the remote run."""

from __future__ import annotations

import queue
import time

import pytest
from jupyter_client.manager import start_new_kernel

from tests.support.server import clean_env

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def kernel(server, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("kernel-cwd")
    env = clean_env(server.home)
    env.pop("MYCLI_DISPLAY", None)
    km, kc = start_new_kernel(kernel_name="python3", env=env, cwd=str(cwd), startup_timeout=60)
    try:
        run(kc, "%load_ext mycli_magic")
        yield km, kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def send(kc, code: str, metadata: dict | None = None) -> str:
    content = {"code": code, "silent": False, "store_history": False, "user_expressions": {},
               "allow_stdin": False, "stop_on_error": True}
    msg = kc.session.msg("execute_request", content)
    msg["metadata"].update(metadata or {})
    kc.shell_channel.send(msg)
    return msg["header"]["msg_id"]


def run(kc, code: str, metadata: dict | None = None, on_message=None, timeout: float = 60) -> list[dict]:
    """Execute and return this request's iopub messages up to the kernel going idle."""
    msg_id = send(kc, code, metadata)
    mine: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        msg = kc.get_iopub_msg(timeout=max(0.1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        mine.append(msg)
        if on_message:
            on_message(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return mine


def stream_text(messages: list[dict]) -> str:
    return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")


def test_a_widget_frontend_gets_the_panel_and_a_headless_client_gets_text(kernel):
    _, kc = kernel
    panel = run(kc, "%%mycli --skip-git\necho shown-in-the-panel", metadata={"cellId": "cell-1"})
    displays = [m for m in panel if m["msg_type"] == "display_data"]
    assert len(displays) == 1 and WIDGET_MIME in displays[0]["content"]["data"]
    assert "shown-in-the-panel" not in stream_text(panel)

    text = run(kc, "%%mycli --skip-git\necho shown-as-text")
    assert not any(m["msg_type"] == "display_data" for m in text)
    lines = stream_text(text).splitlines()
    assert "shown-as-text" in lines and lines[0].startswith("▶ mycli execution ") and lines[-1].startswith("✓ ")


def test_the_background_panel_keeps_updating_after_the_next_cell(kernel):
    _, kc = kernel
    started = run(kc, "%%mycli --skip-git --bg --out job\nsleep 1; echo late-line", metadata={"cellId": "cell-bg"})
    assert any(m["msg_type"] == "display_data" for m in started)
    nxt = run(kc, "print('the next cell')", metadata={"cellId": "cell-next"})
    assert stream_text(nxt) == "the next cell\n"  # nothing of the background run lands here
    deadline, seen = time.monotonic() + 60, ""
    while "late-line" not in seen or "STOPPED · exit 0" not in seen:
        assert time.monotonic() < deadline, "the panel never showed the end of the run"
        try:
            msg = kc.get_iopub_msg(timeout=1)
        except queue.Empty:
            continue
        if msg["msg_type"] == "comm_msg":
            seen += str(msg["content"]["data"].get("state", {}).get("value", ""))


def test_interrupting_the_kernel_stops_the_remote_run(kernel, server):
    km, kc = kernel

    def interrupt_when_started(msg):
        if msg["msg_type"] == "stream" and "started-sleeping" in msg["content"]["text"]:
            km.interrupt_kernel()

    messages = run(kc, "%%mycli --skip-git --out h\necho started-sleeping\nsleep 60", on_message=interrupt_when_started)
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert [e["ename"] for e in errors] == ["Interrupted"]  # a KeyboardInterrupt: Run All stops here
    # one line says what happened, shown once, as the cell's error: no traceback into the magic
    (shown,) = errors[0]["traceback"]
    assert shown.startswith("■ Interrupted: stopped execution ") and shown.endswith("(exit 130).")
    assert "■ Interrupted" not in stream_text(messages)
    ref = run(kc, "print(h.execution_id)")
    execution_id = stream_text(ref).strip()
    status, body = server.call({"action": "status", "execution_id": execution_id})
    assert (body["status"], body["exit_code"]) == ("STOPPED", 130)


def test_a_handle_error_is_one_line_that_names_the_cause(kernel, server, tmp_path):
    _, kc = kernel
    run(kc, '%%mycli --skip-git --out both\necho t > "$MYCLI_OUTPUTS/t.csv"')
    missing = [m["content"] for m in run(kc, "both.open('nope.txt')") if m["msg_type"] == "error"]
    assert len(missing) == 1 and len(missing[0]["traceback"]) == 1, missing
    assert missing[0]["traceback"][0].endswith("has no artifact 'nope.txt' (it has: t.csv)")
    status, body = server.call({"action": "prune", "older_than_days": 0})
    assert status == 200, body
    gone = [m["content"] for m in run(kc, f"both.download({str(tmp_path / 'x')!r})") if m["msg_type"] == "error"]
    assert len(gone) == 1 and len(gone[0]["traceback"]) == 1, gone
    line = gone[0]["traceback"][0]
    assert f"download to {server.url.rsplit('/', 1)[0]} failed: execution " in line, line  # a URL, not a Python tuple
    assert "is gone, and its artifacts with it (pruned: by mycli prune" in line, line
