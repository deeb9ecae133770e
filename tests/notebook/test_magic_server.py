"""`%mycli server status|stop` in a real IPython shell, for the kernel's MYCLI_HOME, and the
host-fallback ⚠ line in a cell (text view and panel): when the engine found no container
runtime it runs on the host until it is restarted, and the line says since when and how to
restart it from the notebook. docker and podman are pointed at nothing, so the fallback happens
whatever this machine runs."""

from __future__ import annotations

import html
import os

import pytest

from tests.support.server import ISOLATED_VARS

FIX = ("; to look for docker/podman again: %mycli server stop, then run again; MYCLI_LOCAL_RUNTIME=docker makes a "
       "missing runtime an error instead of a fallback)")


@pytest.fixture
def no_runtime_ip(ip_mycli, monkeypatch, tmp_path):
    from mycli_magic import embedded

    for name in ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    env = {"MYCLI_HOME": str(tmp_path / "home"), "MYCLI_LOCAL_RUNTIME": "auto",
           "DOCKER_HOST": "unix:///nonexistent/docker.sock", "CONTAINER_HOST": "unix:///nonexistent/podman.sock"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    yield ip_mycli
    embedded.stop_server()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_server_status_and_stop_from_the_notebook(no_runtime_ip, capsys, tmp_path):
    from mycli_magic import embedded

    no_runtime_ip.run_line_magic("mycli", "server status")
    assert capsys.readouterr().out == "No embedded local engine is running (the next %%mycli cell starts one).\n"
    no_runtime_ip.run_cell("%%mycli --skip-git --image=alpine:3.20 --out h\necho on-the-host")
    shown = capsys.readouterr().out.splitlines()
    notices = [line for line in shown if line.startswith("⚠")]
    assert len(notices) == 1, shown
    assert notices[0].startswith("⚠ image alpine:3.20 ignored: no container runtime; ran on the host (chosen when the "
                                 "engine started ") and notices[0].endswith(" s ago" + FIX), notices[0]

    pid = embedded.running_server()["pid"]
    no_runtime_ip.run_line_magic("mycli", "server status")
    status = capsys.readouterr().out.splitlines()
    assert status[0].startswith("Embedded local engine running at http://127.0.0.1:")
    assert status[0].endswith(f" (pid {pid}, state: {tmp_path / 'home' / 'engine'})")
    assert status[1].startswith("  runtime: host (no container runtime (docker: ") and len(status) == 2, status

    no_runtime_ip.run_line_magic("mycli", "server stop")
    assert capsys.readouterr().out == f"✓ Stopped the embedded local engine (pid {pid}).\n"
    assert not alive(pid) and embedded.running_server() is None
    no_runtime_ip.run_line_magic("mycli", "server stop")
    assert capsys.readouterr().out == "No embedded local engine is running.\n"


def test_the_panel_shows_the_same_line(no_runtime_ip):
    from mycli_magic.notebook.panel import PanelView
    from mycli_magic.notebook.view_settings import ViewSettings

    no_runtime_ip.run_cell("%%mycli --skip-git --image=alpine:3.20 --out h\necho on-the-host")
    view = PanelView(ViewSettings())
    view.show(no_runtime_ip.user_ns["h"], background=True)
    view.finished(no_runtime_ip.user_ns["h"].wait())
    assert html.escape(FIX) in view.note.value and "ran on the host (chosen when the engine started " in view.note.value


def test_an_asked_for_host_gets_no_restart_advice_and_status_names_the_notebook_command(no_runtime_ip, monkeypatch, capsys):
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "host")
    no_runtime_ip.run_cell("%%mycli --skip-git --image=alpine:3.20 --out h\necho on-the-host")
    notices = [line for line in capsys.readouterr().out.splitlines() if line.startswith("⚠")]
    assert notices == ["⚠ image alpine:3.20 ignored: MYCLI_LOCAL_RUNTIME=host; ran on the host"]
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "podman")
    no_runtime_ip.run_line_magic("mycli", "server status")
    status = capsys.readouterr().out.splitlines()
    assert status[-1].startswith("  ⚠ The embedded engine (pid ") and "To switch: %mycli server stop (" in status[-1], status


def test_server_takes_only_status_or_stop(no_runtime_ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as info:
        no_runtime_ip.run_line_magic("mycli", "server start")
    assert "invalid choice: 'start'" in str(info.value) and "\n" not in str(info.value)
