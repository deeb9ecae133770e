"""The widget panel driven by real runs on a real server: bounded tail, buttons, toggles."""

from __future__ import annotations

import re
import time

import pytest

from mycli_magic.notebook.handle import Execution, ExecutionFailed
from mycli_magic.notebook.panel import SHOW_ALL_LIMIT, PanelView
from mycli_magic.notebook.view_settings import ViewSettings


@pytest.fixture
def client(server, monkeypatch, tmp_path):
    from mycli_magic.client import connect

    monkeypatch.setenv("MYCLI_HOME", str(server.home))
    monkeypatch.chdir(tmp_path)
    return connect()


def start(client, command: str) -> Execution:
    return Execution(client, client.exec({"command": command, "skip_git": True}), max_idle_sleep=0.1)


def log_lines(view: PanelView) -> list[str]:
    body = re.search(r"<pre[^>]*>(.*)</pre>", view.log.value, re.S).group(1)
    return body.split("\n")


def eventually(check, what: str, timeout: float = 30.0) -> None:
    """Wait for a state the run will reach (not a timing assertion: the limit only ends a hang)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"never saw: {what}"
        time.sleep(0.02)


def test_large_output_renders_a_bounded_tail_and_says_how_to_get_the_rest(client):
    handle = start(client, "seq 1 100000")
    view = PanelView(ViewSettings(tail_lines=2000, handle_name="h"))
    view.show(handle, background=False)
    handle.wait()
    view.finished(handle)
    shown = log_lines(view)
    total = len(handle.events)
    assert total > 100000 and len(shown) == 2000 and "100000" in shown
    assert f"Showing the last 2,000 of {total:,} lines" in view.note.value
    assert f"%mycli logs {handle.execution_id}" in view.note.value and "h.logs" in view.note.value
    assert "STOPPED · exit 0" in view.header.value and "mycli-badge ok" in view.header.value
    assert f"✓ {handle.execution_id} · exit 0" in view.summary.value
    view.show_all_toggle.value = True  # still bounded, so the page stays usable
    assert len(log_lines(view)) == SHOW_ALL_LIMIT and f"Showing the last 50,000 of {total:,} lines" in view.note.value


def test_stop_button_stops_a_background_run(client):
    handle = start(client, "echo started; sleep 60; echo never")
    view = PanelView(ViewSettings())
    view.show(handle, background=True)
    assert not view.stop_button.disabled
    eventually(lambda: "started" in view.log.value, "the first line in the panel")
    assert "RUNNING · " in view.header.value
    view.stop_button.click()
    handle.wait(timeout=30)
    assert (handle.status, handle.exit_code) == ("STOPPED", 130)
    eventually(lambda: "stopped (exit 130)" in view.summary.value, "the final summary")
    assert "mycli-badge stopped" in view.header.value and "never" not in view.log.value
    assert view.stop_button.disabled


def test_a_blocking_panel_points_at_the_interrupt_button(client):
    handle = start(client, "true")
    view = PanelView(ViewSettings())
    view.show(handle, background=False)
    assert view.stop_button.disabled
    assert "interrupt the kernel" in view.note.value or handle.status == "STOPPED"
    handle.wait()
    view.finished(handle)
    assert "interrupt the kernel" not in view.note.value


def test_follow_off_freezes_the_log_until_turned_on(client, tmp_path):
    flag = tmp_path / "go"
    handle = start(client, f"echo one; while [ ! -e {flag} ]; do sleep 0.05; done; echo two")
    view = PanelView(ViewSettings())
    view.show(handle, background=True)
    eventually(lambda: "one" in log_lines(view), "the first line")
    view.follow_toggle.value = False
    flag.touch()
    handle.wait(timeout=30)
    view.render(force=True)
    assert "two" not in log_lines(view) and "newer lines not shown" in view.note.value
    view.follow_toggle.value = True
    assert "two" in log_lines(view)


def test_timestamps_toggle_and_save(client, tmp_path):
    handle = start(client, "printf '\\033[31mred\\033[0m\\n'; seq 1 50")
    view = PanelView(ViewSettings(tail_lines=10))
    view.show(handle, background=False)
    handle.wait()
    view.finished(handle)
    assert "mycli-ts" not in view.log.value
    view.show_all_toggle.value = True
    assert "red" in log_lines(view) and "\x1b" not in view.log.value  # colour codes dropped
    view.timestamps_toggle.value = True
    assert re.search(r"<span class='mycli-ts'>\d\d:\d\d:\d\d</span> 50", view.log.value)
    view.save_button.click()
    saved = tmp_path / f"mycli-{handle.execution_id}.log"
    assert len(saved.read_text().splitlines()) == len(handle.events)
    assert f"Saved the whole log ({len(handle.events):,} lines) to {saved}" in view.note.value


def test_save_to_a_place_that_cannot_be_written_is_one_line_in_the_panel(client, tmp_path, capsys):
    handle = start(client, "echo to-save")
    view = PanelView(ViewSettings())
    view.show(handle, background=False)
    handle.wait()
    view.finished(handle)
    (tmp_path / f"mycli-{handle.execution_id}.log").mkdir()  # a directory where the file would go
    view.save_button.click()
    assert "✗ Cannot write" in view.note.value and "Is a directory" in view.note.value
    assert f"%mycli logs {handle.execution_id}" in view.note.value
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err


def test_the_magic_shows_the_panel_when_asked(engine_ip, capsys):
    engine_ip.run_line_magic("config", "MycliMagics.display = 'widget'")
    engine_ip.run_cell("%%mycli --skip-git --out h\necho in-a-panel")
    out = capsys.readouterr().out
    assert out.startswith("VBox(")  # what a shell without a widget frontend prints for the panel
    assert "in-a-panel" in engine_ip.user_ns["h"].logs.splitlines() and "in-a-panel" not in out.splitlines()
    with pytest.raises(ExecutionFailed):
        engine_ip.run_cell("%%mycli --skip-git\nexit 5")


def test_an_image_the_engine_could_not_use_is_one_line_in_the_panel(engine_ip):
    """The session's engine runs on the host (MYCLI_LOCAL_RUNTIME=host): a named image is not used."""
    engine_ip.run_line_magic("config", "MycliMagics.display = 'widget'")
    engine_ip.run_cell("%%mycli --skip-git --image python:3.11 --out h\necho hi")
    from mycli_magic.notebook import panel

    view = panel.PanelView(ViewSettings())
    view.show(engine_ip.user_ns["h"], background=False)
    view.finished(engine_ip.user_ns["h"])
    notice = "⚠ image python:3.11 ignored: MYCLI_LOCAL_RUNTIME=host; ran on the host"
    assert view.note.value.count(notice) == 1
