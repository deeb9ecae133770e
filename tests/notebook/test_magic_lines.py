"""The magics' lines and what a cell shows, in a real IPython shell against a real server: the
options line (a command on it, expansion when one name does not resolve), an interrupt's one
line, partial lines in the text view and the panel, handles read afresh."""

from __future__ import annotations

import re
import signal
import threading
import time

import pytest
from IPython.core.error import UsageError

from mycli_magic.notebook.handle import Execution

# printf 'working…' then wait (at most 30 s) for the reader to open a gate: only a reader that saw
# the partial line before its newline can open it in time, and the line says which happened.
WORKING = ("printf 'working…'; i=0; while [ ! -e {gate} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
           "if [ -e {gate} ]; then how=gate; else how=gave-up; fi; printf ' done (%s)\\n' \"$how\"")


def handle_of(shell, name: str = "h") -> Execution:
    handle = shell.user_ns[name]
    assert isinstance(handle, Execution)
    return handle


def count(server) -> int:
    return len(server.call({"action": "list", "limit": 1000})[1]["executions"])


def test_a_command_on_the_options_line_is_refused_and_nothing_runs(engine_ip, server):
    before = count(server)
    with pytest.raises(UsageError) as info:
        engine_ip.run_cell('%%mycli --skip-git "echo hi" --bg\necho body')
    message = str(info.value)
    assert "'echo hi' on the %%mycli line is not an option: the command goes in the cell" in message
    assert "\n" not in message and count(server) == before


def test_one_unresolved_name_does_not_stop_the_others_expanding(engine_ip, capsys):
    engine_ip.user_ns["n"] = 5
    engine_ip.run_cell('%%mycli --skip-git --out h --env N={n} --env RAW=$HOME\necho "N=$N RAW=$RAW"')
    assert "N=5 RAW=$HOME" in handle_of(engine_ip).logs.splitlines()  # IPython alone would send N={n}
    warning = [line for line in capsys.readouterr().err.splitlines() if line.startswith("⚠")]
    assert len(warning) == 1 and "left as written" in warning[0] and "$HOME" in warning[0] and "{n}" not in warning[0]


def test_an_interrupt_shows_one_line_and_no_traceback(engine_ip, interrupt_at):
    watch = interrupt_at("started-sleeping")
    with pytest.raises(KeyboardInterrupt):
        engine_ip.run_cell("%%mycli --skip-git --out h\necho started-sleeping\nsleep 60")
    ref = handle_of(engine_ip).execution_id
    shown = watch.text.strip().splitlines()
    assert shown[-1] == f"■ Interrupted: stopped execution {ref} on the remote (exit 130)."  # last, and once
    assert shown.count(shown[-1]) == 1 and "Traceback" not in watch.text and "KeyboardInterrupt" not in watch.text


def test_log_lines_of_a_new_handle_reads_the_log(engine_ip):
    engine_ip.run_cell("%%mycli --skip-git --out h\necho line-for-a-new-handle")
    fresh = engine_ip.run_line_magic("mycli", f"status {handle_of(engine_ip).execution_id}")
    assert "line-for-a-new-handle" in fresh.log_lines()  # before, [] until .logs had been read


def test_a_partial_line_shows_in_the_cell_before_its_newline(engine_ip, watch_stdout, tmp_path):
    gate = tmp_path / "gate"
    watch = watch_stdout("working…", callback=gate.touch)
    engine_ip.run_cell(f"%%mycli --skip-git --out h\n{WORKING.format(gate=gate)}")
    assert "\nworking… done (gate)\n" in watch.text
    assert "working… done (gate)" in handle_of(engine_ip).log_lines()  # one line in the handle too


def test_a_partial_line_shows_in_the_panel_and_is_completed_in_place(engine_ip, tmp_path):
    from mycli_magic.notebook.panel import PanelView
    from mycli_magic.notebook.view_settings import ViewSettings

    gate = tmp_path / "gate"
    engine_ip.run_cell(f"%%mycli --skip-git --bg --out h\n{WORKING.format(gate=gate)}")
    handle = handle_of(engine_ip)
    view = PanelView(ViewSettings())
    view.show(handle, background=True)

    def shown() -> list[str]:
        view.render(force=True)
        return re.search(r"<pre[^>]*>(.*)</pre>", view.log.value, re.S).group(1).split("\n")

    deadline = time.monotonic() + 30
    while shown()[-1] != "working…":
        assert time.monotonic() < deadline, shown()[-3:]
        time.sleep(0.02)
    gate.touch()
    handle.wait()
    view.finished(handle)
    assert "working… done (gate)" in shown() and "working…" not in shown()


def test_list_shows_the_same_columns_as_the_cli(engine_ip, server):
    from tests.support.cli import Cli

    engine_ip.run_cell("%%mycli --skip-git --out h\necho listed")
    ref = handle_of(engine_ip).execution_id
    magic = repr(engine_ip.run_line_magic("mycli", "list --limit 1000")).splitlines()
    terminal = Cli(server.home).run("list", "--limit", "1000")
    assert terminal.returncode == 0, terminal.stderr
    cli_lines = [line.rstrip() for line in terminal.stdout.splitlines()]
    assert magic[0].split() == cli_lines[0].split() == ["EXECUTION", "ID", "STATUS", "EXIT", "CREATED", "DURATION",
                                                        "IMAGE", "WHERE", "COMMAND"]
    row = [line.split() for line in magic if line.startswith(ref)]  # (widths follow the other rows)
    assert row == [line.split() for line in cli_lines if line.startswith(ref)] and row[0][1:3] == ["STOPPED", "0"]


def test_an_engine_on_another_runtime_than_the_setting_is_said_so_once(engine_ip, server, capsys, monkeypatch):
    """The session's engine runs on the host; a notebook that then sets MYCLI_LOCAL_RUNTIME=podman
    is told once (not at every cell) what runs and how to switch: the CLI's line."""
    monkeypatch.setenv("MYCLI_LOCAL_RUNTIME", "podman")
    engine_ip.run_line_magic("mycli", "list")
    engine_ip.run_line_magic("mycli", "list")
    warnings = [line for line in capsys.readouterr().out.splitlines() if line.startswith("⚠")]
    assert warnings == [f"⚠ The embedded engine (pid {server.proc.pid}) runs on the host, not MYCLI_LOCAL_RUNTIME=podman: "
                        "it keeps the runtime it started with. To switch: mycli server stop (the next command starts "
                        "it with MYCLI_LOCAL_RUNTIME=podman)"]


@pytest.mark.containers
def test_a_hung_docker_while_the_engine_starts_is_said_in_the_cell(ip_mycli, capsys, monkeypatch, tmp_path):
    """The first magic of a notebook whose dockerd hangs: the cell says what it waits for, then
    where the engine settled and why — the CLI's lines (engine_notes), not a silent wait."""
    import shutil
    import socket

    from mycli_magic import embedded
    from orchestrator.engines.local_probe import PING_SECONDS
    from tests.support import runtimes
    from tests.support.server import ISOLATED_VARS

    if shutil.which("docker") is None:
        runtimes.require("docker")  # the docker client is what hangs; its daemon is not needed
    for name in ISOLATED_VARS:
        monkeypatch.delenv(name, raising=False)
    silent = tmp_path / "silent.sock"
    env = {"MYCLI_HOME": str(tmp_path / "home"), "MYCLI_LOCAL_RUNTIME": "auto", "DOCKER_HOST": f"unix://{silent}",
           "CONTAINER_HOST": "unix:///nonexistent/podman.sock"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(silent))
        listener.listen(16)
        try:
            ip_mycli.run_line_magic("mycli", "list")
        finally:
            embedded.stop_server()
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line.startswith("→ Starting the embedded engine: ")] == [
        f"→ Starting the embedded engine: checking docker… (no answer yet from unix://{silent} after 2 s; giving up at {PING_SECONDS:.0f} s)"]
    settled = [line for line in lines if line.startswith("→ Embedded engine runtime: ")]
    assert len(settled) == 1 and settled[0].startswith(f"→ Embedded engine runtime: host (no container runtime (docker: "
                                                       f"the docker daemon at unix://{silent} accepted the connection"), lines


def test_the_text_view_keeps_a_head_and_a_tail_of_a_long_log_and_counts_what_it_left_out(engine_ip, capsys):
    """Under nbconvert/papermill every printed line is stored in the .ipynb (300,000 lines: 12 MB)."""
    engine_ip.run_line_magic("config", "MycliMagics.tail_lines = 100")
    engine_ip.run_cell("%%mycli --skip-git --out big\nseq 1 5000 | sed 's/^/n=/'; echo LAST-LINE")
    out = capsys.readouterr().out.splitlines()
    ref = engine_ip.user_ns["big"].execution_id
    more = out.index(f"… more output: its last 50 lines are shown when the run ends (the whole log: %mycli logs {ref}; "
                     "MycliMagics.tail_lines sets how many)")
    head = [int(line[2:]) for line in out[:more] if line.startswith("n=")]
    assert head == list(range(1, len(head) + 1)) and len(out[:more]) <= 60  # 50 lines and the header
    omitted = [line for line in out if line.startswith("… ") and "omitted here" in line]
    assert len(omitted) == 1 and out.index(omitted[0]) > more
    left_out = int(re.match(r"… ([\d,]+) lines \(", omitted[0]).group(1).replace(",", ""))
    after = out[out.index(omitted[0]) + 1:]
    assert out[more + 1] == omitted[0]  # nothing printed between the two notes
    tail = [int(line[2:]) for line in after if line.startswith("n=")]
    assert tail == list(range(tail[0], 5001)) and "LAST-LINE" in after
    assert left_out == tail[0] - 1 - len(head)  # exactly the lines between the head and the tail
    assert f"the whole log: %mycli logs {ref}" in omitted[0] and len(out) < 200
