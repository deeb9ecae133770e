"""%%mycli and %mycli in a real IPython shell against a real mycli server (no mocked HTTP)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from IPython.core.error import UsageError

from mycli_magic.notebook.handle import Execution, ExecutionFailed

ID_RE = re.compile(r"\b[0-9a-f]{12}\b")


def last_handle(shell, name: str = "h") -> Execution:
    handle = shell.user_ns[name]
    assert isinstance(handle, Execution)
    return handle


def test_load_ext_imports_no_boto3_ipywidgets_or_yaml():
    code = ("import sys; from IPython.core.interactiveshell import InteractiveShell; "
            "shell = InteractiveShell.instance(); before = set(sys.modules); "
            "shell.run_line_magic('load_ext', 'mycli_magic'); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'boto3', 'botocore', 'ipywidgets', 'yaml'})); "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    heavy, loaded = out.splitlines()
    assert heavy == "[]"
    # the files machinery and the API client wait for the first cell that needs them
    assert "mycli_magic.notebook.magics" in loaded
    for module in ("tarfile", "hashlib", "urllib.request", "mycli_magic.client", "mycli_magic.uploads",
                   "mycli_magic.downloads", "mycli_magic.transfer", "mycli_magic.notebook.handle",
                   "mycli_magic.notebook.handle_files", "mycli_magic.notebook.panel_files"):
        assert f"'{module}'" not in loaded


def test_output_streams_while_the_cell_runs(engine_ip, watch_stdout, tmp_path):
    # The command waits for a file that the test creates only once the first line has been
    # printed in the cell: if output were shown only at the end, the run would time out.
    flag = tmp_path / "seen-first-line"
    watch = watch_stdout("first-line", callback=flag.touch)
    engine_ip.run_cell(f"%%mycli --skip-git --timeout 60 --out h\necho first-line\n"
                       f"while [ ! -e {flag} ]; do sleep 0.05; done\necho second-line")
    assert watch.fired.is_set()
    handle = last_handle(engine_ip)
    assert (handle.status, handle.exit_code) == ("STOPPED", 0)
    assert watch.text.index("first-line") < watch.text.index("second-line")
    header, summary = watch.text.splitlines()[0], watch.text.strip().splitlines()[-1]
    assert header.startswith(f"▶ mycli execution {handle.execution_id} · image ") and "no git · local engine" in header
    assert summary.startswith(f"✓ {handle.execution_id} · exit 0 · ") and summary.endswith(" s")


def test_an_image_the_engine_could_not_use_is_one_line_in_the_cell(engine_ip, capsys):
    engine_ip.run_cell("%%mycli --skip-git --image python:3.11 --out h\necho hi")
    out = capsys.readouterr().out.splitlines()
    assert [line for line in out if "ignored" in line] == [
        "⚠ image python:3.11 ignored: MYCLI_LOCAL_RUNTIME=host; ran on the host"]
    assert out.index("⚠ image python:3.11 ignored: MYCLI_LOCAL_RUNTIME=host; ran on the host") == 1  # under the header
    assert out[0].startswith("▶ mycli execution ") and " · image — (host) · " in out[0], out[0]
    handle = engine_ip.user_ns["h"]
    assert "image=— (host)" in repr(handle) and "python:3.11" not in repr(handle)


def test_size_from_the_options_then_the_config_defaults(engine_ip, capsys):
    engine_ip.run_line_magic("config", "MycliMagics.cpu = 1")
    engine_ip.run_line_magic("config", "MycliMagics.memory = '4GiB'")
    engine_ip.run_cell("%%mycli --skip-git --out h\ntrue")
    assert (engine_ip.user_ns["h"].info["cpu"], engine_ip.user_ns["h"].info["memory"]) == (1, 4096)
    engine_ip.run_cell("%%mycli --skip-git --cpu 2 --out h\ntrue")  # the option wins, the default memory stays
    assert (engine_ip.user_ns["h"].info["cpu"], engine_ip.user_ns["h"].info["memory"]) == (2, 4096)
    assert engine_ip.user_ns["h"].info["resources_enforced"] is False  # the host runtime applies no size
    with pytest.raises(UsageError) as info:
        engine_ip.run_cell("%%mycli --skip-git --memory 1024\ntrue")
    assert str(info.value) == ("memory 1024 MiB is not valid with cpu 1: choose 2048–8192 MiB in steps of 1024 "
                               "(cpu from %config MycliMagics, memory from --memory)")


def test_failing_cell_raises_called_process_error_with_the_remote_exit_code(engine_ip, capsys):
    with pytest.raises(ExecutionFailed) as info:
        engine_ip.run_cell("%%mycli --skip-git --out h\necho about to fail\nexit 3")
    err = info.value
    handle = last_handle(engine_ip)
    assert isinstance(err, subprocess.CalledProcessError)
    assert err.returncode == 3 and err.execution_id == handle.execution_id
    assert handle.execution_id in str(err) and "exit code 3" in str(err)
    assert "about to fail" in err.output
    out = capsys.readouterr().out
    assert f"✗ {handle.execution_id} · exit 3" in out
    # what IPython shows for the failure: one line, no traceback into the magic's code
    shown = out[out.index(f"✗ {handle.execution_id} · exit 3"):].strip().splitlines()[1:]
    assert shown == [f"\x1b[0;31mExecutionFailed\x1b[0m: {err}"]


def test_a_command_that_could_not_start_is_not_said_to_have_failed(engine_ip, tmp_path, capsys):
    with pytest.raises(ExecutionFailed) as info:  # the clone fails: the command never runs
        engine_ip.run_cell(f"%%mycli --repo {tmp_path / 'no-such-repo.git'} --out h\ntouch CANARY")
    ident = last_handle(engine_ip).execution_id
    assert info.value.returncode == 200
    assert re.fullmatch(rf"the run could not start its command after (under 1 s|\d+ s) \(exit code 200; the log says "
                        rf"why\) \(execution {ident}; full log: %mycli logs {ident}\)", str(info.value)), str(info.value)
    assert re.search(r"✗ \w+ · could not start its command after (under 1 s|\d+ s) \(exit 200\)", capsys.readouterr().out)


def test_no_raise_keeps_the_cell_green(engine_ip):
    engine_ip.run_cell("%%mycli --skip-git --no-raise --out h\nexit 4")
    assert last_handle(engine_ip).exit_code == 4


def test_interrupt_stops_the_remote_run(engine_ip, interrupt_at, server):
    watch = interrupt_at("started-sleeping")
    with pytest.raises(KeyboardInterrupt):
        engine_ip.run_cell("%%mycli --skip-git --out h\necho started-sleeping\nsleep 60\necho never")
    handle = last_handle(engine_ip)
    status, remote = server.call({"action": "status", "execution_id": handle.execution_id})
    assert status == 200 and (remote["status"], remote["exit_code"]) == ("STOPPED", 130)
    assert f"■ Interrupted: stopped execution {handle.execution_id} on the remote (exit 130)." in watch.text
    assert "never" not in server.all_lines(handle.execution_id)


def test_an_interrupt_that_stops_the_run_still_saves_what_it_wrote(engine_ip, interrupt_at):
    """A stopped training run's checkpoints are what the user interrupted it to look at."""
    watch = interrupt_at("started-sleeping")
    with pytest.raises(KeyboardInterrupt):
        engine_ip.run_cell('%%mycli --skip-git --out job\necho ckpt > "$MYCLI_OUTPUTS/epoch1.ckpt"\n'
                           "echo started-sleeping\nsleep 60")
    handle = last_handle(engine_ip, "job")
    saved = Path.cwd() / "mycli-runs" / handle.execution_id / "epoch1.ckpt"
    assert saved.read_text() == "ckpt\n"
    assert f"Saved in mycli-runs/{handle.execution_id}/ (sha256 checked)" in watch.text
    assert watch.text.rstrip().endswith(f"■ Interrupted: stopped execution {handle.execution_id} on the remote (exit 130).")


def test_bg_returns_at_once_and_the_handle_waits(engine_ip, watch_stdout, tmp_path):
    flag = tmp_path / "go"
    watch = watch_stdout()
    engine_ip.run_cell(f"%%mycli --skip-git --bg --out job\nwhile [ ! -e {flag} ]; do sleep 0.05; done\necho bg-done")
    job = last_handle(engine_ip, "job")
    assert job.status in ("PENDING", "RUNNING")  # it cannot end before the flag exists
    assert f"→ Running in the background. Follow: job.wait() · stop: %mycli stop {job.execution_id}" in watch.text
    flag.touch()
    job.wait()
    assert (job.status, job.exit_code) == ("STOPPED", 0)
    assert "bg-done" in job.logs.splitlines()
    assert "bg-done" not in watch.text  # a background run prints nothing from its thread


def test_saving_a_log_where_it_cannot_go_is_one_line(engine_ip, tmp_path, capsys):
    from mycli_magic.notebook.handle import SaveFailed

    engine_ip.run_cell("%%mycli --skip-git --out h\necho hi")
    capsys.readouterr()
    target = tmp_path / "nonexistent" / "k.log"
    with pytest.raises(SaveFailed) as info:
        engine_ip.run_cell(f"h.save({str(target)!r})")
    assert isinstance(info.value, OSError)
    assert str(info.value) == f"cannot save the log to {target}: No such file or directory (create the folder first)"
    shown = capsys.readouterr().out.strip().splitlines()
    assert shown == [f"\x1b[0;31mSaveFailed\x1b[0m: {info.value}"], shown


@pytest.mark.parametrize("cell, words", [
    ('%%mycli --skip-git "echo hi"', "%%mycli: 'echo hi' on the %%mycli line is not an option: the command goes in the cell, "
                                     "on the lines below %%mycli"),
    ("%%mycli --skip-git", "the cell is empty: write the command to run on the lines below %%mycli"),
])
def test_a_cell_with_no_body_says_where_the_command_goes(ip_mycli, cell, words):
    """IPython's own answer, "Did you mean the line magic %mycli (single %)?", is a dead end."""
    ip_mycli.run_line_magic("reload_ext", "mycli_magic")  # still one transformer after a reload
    with pytest.raises(UsageError) as info:
        ip_mycli.run_cell(cell)
    assert str(info.value).startswith(words), str(info.value)
    assert "single %" not in str(info.value)


def test_out_handle_reads_refreshes_and_renders(engine_ip, tmp_path):
    engine_ip.run_cell("%%mycli --skip-git --out h\nprintf 'alpha\\nbeta\\n'")
    handle = last_handle(engine_ip)
    assert ID_RE.fullmatch(handle.execution_id) and handle.task_arn.endswith(handle.execution_id)
    assert (handle.status, handle.exit_code) == ("STOPPED", 0)
    assert "alpha\nbeta" in handle.logs
    assert handle.refresh().status == "STOPPED"
    assert handle.stop().exit_code == 0  # stopping a finished run changes nothing
    assert handle.execution_id in repr(handle) and "exit 0" in repr(handle)
    assert handle.execution_id in handle._repr_html_() and "<table" in handle._repr_html_()
    saved = handle.save(tmp_path / "run.log")
    assert saved.read_text().count("alpha") == 1


def test_attach_in_a_new_shell_shows_the_whole_log(engine_ip, make_shell, watch_stdout, tmp_path):
    flag = tmp_path / "go"
    engine_ip.run_cell(f"%%mycli --skip-git --bg --out job\necho from-the-start\n"
                       f"while [ ! -e {flag} ]; do sleep 0.05; done\necho after-attach")
    ref = last_handle(engine_ip, "job").execution_id
    fresh = make_shell()  # "after a kernel restart": nothing in memory
    watch = watch_stdout("from-the-start", callback=flag.touch)
    fresh.run_cell(f"%mycli attach {ref} --out again")
    lines = watch.text.splitlines()
    assert lines[0].startswith(f"▶ mycli execution {ref}")
    assert "from-the-start" in lines and "after-attach" in lines
    assert lines[-1].startswith(f"✓ {ref} · exit 0")
    assert fresh.user_ns["again"].execution_id == ref


def test_line_commands_status_logs_stop_list(engine_ip, capsys):
    engine_ip.run_cell("%%mycli --skip-git --out h\necho listed-line")
    ref = last_handle(engine_ip).execution_id
    capsys.readouterr()
    status = engine_ip.run_line_magic("mycli", f"status {ref}")
    assert isinstance(status, Execution) and status.exit_code == 0
    engine_ip.run_line_magic("mycli", f"logs {ref}")
    out = capsys.readouterr().out
    assert "listed-line" in out.splitlines() and out.strip().splitlines()[-1].startswith(f"✓ {ref}")
    engine_ip.run_line_magic("mycli", f"logs {ref} -t")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| listed-line$", capsys.readouterr().out, re.M)
    listing = engine_ip.run_line_magic("mycli", "list --limit 50")
    assert ref in repr(listing) and ref in listing._repr_html_() and "<table" in listing._repr_html_()
    engine_ip.run_cell("%%mycli --skip-git --bg --out long\nsleep 60")
    long_ref = last_handle(engine_ip, "long").execution_id
    capsys.readouterr()
    engine_ip.run_line_magic("mycli", f"stop {long_ref}")
    assert f"■ {long_ref} · stopped (exit 130)" in capsys.readouterr().out
    assert engine_ip.run_line_magic("mycli", f"status {long_ref}").exit_code == 130


def test_cell_body_is_sent_verbatim(engine_ip, server, capsys):
    engine_ip.user_ns.update(x="python-x", HOME="python-home")
    body = "echo $HOME {x} $$x\n"
    engine_ip.run_cell(f"%%mycli --skip-git --out h\n{body}")
    handle = last_handle(engine_ip)
    assert handle.command == body
    assert "python-x" not in handle.logs and "python-home" not in handle.logs
    # the remote shell expanded $HOME and $$ itself; {x} reached it untouched
    assert any(re.fullmatch(r"/\S* \{x\} \d+x", line) for line in handle.logs.splitlines()), handle.logs


def test_the_options_line_is_expanded(engine_ip):
    engine_ip.user_ns.update(n=7, word="two words")
    engine_ip.run_cell('%%mycli --skip-git --env N={n} --env "W=$word" --out h\necho "N=$N W=$W"')
    assert "N=7 W=two words" in last_handle(engine_ip).logs.splitlines()


def test_config_defaults_apply_below_flags(engine_ip):
    engine_ip.run_line_magic("config", "MycliMagics.image = 'alpine:3.19'")
    engine_ip.run_line_magic("config", "MycliMagics.timeout = 77")
    engine_ip.run_cell("%%mycli --skip-git --out h\ntrue")
    assert (last_handle(engine_ip).info["image"], last_handle(engine_ip).info["timeout_seconds"]) == ("alpine:3.19", 77)
    engine_ip.run_cell("%%mycli --skip-git --image busybox:1.36 --timeout 30 --out h\ntrue")
    assert (last_handle(engine_ip).info["image"], last_handle(engine_ip).info["timeout_seconds"]) == ("busybox:1.36", 30)


def test_mycli_yaml_and_a_local_git_repo(engine_ip, tmp_path, monkeypatch):
    repo = tmp_path / "project"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "-C", str(repo)]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    (repo / "hello.txt").write_text("hello from the repo\n")
    subprocess.run([*git, "add", "hello.txt"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "first"], check=True)
    (repo / ".mycli.yaml").write_text(f"repo: {repo}\nbranch: main\nimage: alpine:3.19\n")
    monkeypatch.chdir(repo)
    engine_ip.run_cell("%%mycli --out h\ncat hello.txt")
    handle = last_handle(engine_ip)
    assert "hello from the repo" in handle.logs.splitlines()
    assert (handle.info["repo"], handle.info["branch"], handle.info["image"]) == (str(repo), "main", "alpine:3.19")


@pytest.mark.parametrize("cell, words", [
    ("%%mycli --timeout soon\necho", "%%mycli: argument --timeout: 'soon' is not a whole number of seconds"),
    ("%%mycli --timeout 0\necho", "%%mycli: argument --timeout: must be from 1 to 86400 seconds"),
    ("%%mycli --skip-git --bogus\necho", "unrecognized arguments: --bogus"),
    ('%%mycli --env "unclosed\necho', "check the quotes"),
    ("%%mycli --skip-git\n   \n", "the cell is empty"),
    ("%%mycli --skip-git --out 1x\necho", "not a Python variable name"),
    ("%%mycli\necho", "no repository to run in"),
    ("%%mycli --skip-git --repo https://example.com/r.git\necho", "contradict each other"),
    ("%%mycli --skip-git --env =x\necho", "must be KEY=VALUE"),
    ("%%mycli --skip-git --image 'not an image!'\necho", "is not a valid image reference"),
    ("%mycli status 000000000000", "not found"),
    ("%mycli frobnicate", "invalid choice: 'frobnicate'"),
    ("%mycli list --limit 0", "argument --limit: must be from 1 to 1000"),
    ("%mycli list --limit abc", "argument --limit: 'abc' is not a whole number"),
    ("%mycli init --capacity moon", "invalid choice: 'moon'"),
])
def test_mistakes_are_one_line_usage_errors(engine_ip, capsys, cell, words):
    with pytest.raises(UsageError) as info:
        engine_ip.run_cell(cell)
    assert words in str(info.value) and "\n" not in str(info.value)
    err = capsys.readouterr().err
    assert err.strip() == f"UsageError: {info.value}"  # one line, no traceback


def test_an_unexpected_error_is_one_line_unless_debugging(engine_ip, tmp_path, monkeypatch, capsys):
    gone = tmp_path / "deleted-working-directory"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()  # os.getcwd() now fails: not a mistake the magic words for the user
    with pytest.raises(UsageError) as info:
        engine_ip.run_cell("%%mycli --skip-git\necho")
    assert str(info.value).startswith("internal error: FileNotFoundError: ") and "\n" not in str(info.value)
    assert str(info.value).endswith("; set MYCLI_DEBUG=1 for the traceback")
    assert capsys.readouterr().err.strip() == f"UsageError: {info.value}"
    monkeypatch.setenv("MYCLI_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        engine_ip.run_cell("%%mycli --skip-git\necho")


def test_unreachable_endpoint_is_a_usage_error(ip_mycli, monkeypatch, tmp_path):
    monkeypatch.setenv("MYCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MYCLI_API_ENDPOINT", "http://127.0.0.1:9/execute")
    monkeypatch.setenv("MYCLI_API_KEY", "k" * 32)
    with pytest.raises(UsageError, match=r"cannot reach http://127\.0\.0\.1:9/execute"):
        ip_mycli.run_cell("%%mycli --skip-git\necho")


def test_help_comes_from_magic_arguments(ip_mycli):
    doc = ip_mycli.find_cell_magic("mycli").__doc__
    for flag in ("--repo", "--branch", "--image", "--env", "--timeout", "--skip-git", "--profile", "--bg", "--out", "--no-raise"):
        assert flag in doc
    assert "%mycli status" in ip_mycli.find_line_magic("mycli").__doc__


def test_bad_config_values_are_refused(ip_mycli):
    from traitlets import TraitError

    magics = ip_mycli.magics_manager.registry["MycliMagics"]
    for trait, value, words in (("timeout", -1, "less than 0"), ("timeout", 86401, "greater than 86400"),
                                ("poll_interval", 0.0, "less than 0.05"), ("display", "fancy", "'fancy'"),
                                ("tail_lines", 1, "less than 10"), ("tail_lines", 50_001, "greater than 50000")):
        with pytest.raises(TraitError, match=f"'{trait}' trait .*{words}"):
            setattr(magics, trait, value)
    for trait, value in (("timeout", 86400), ("poll_interval", 0.05), ("tail_lines", 10)):
        setattr(magics, trait, value)  # the bounds themselves are allowed
        assert getattr(magics, trait) == value


def test_one_clock_for_log_times():
    from mycli_magic.summary import clock

    assert clock(1714564803_250) == "2024-05-01 12:00:03 UTC"  # as the API writes a log line's time
    assert clock(1714564803_250, date=False) == "12:00:03"


def test_text_is_chosen_without_a_widget_frontend(ip_mycli, monkeypatch):
    from mycli_magic.notebook.display import choose_display

    assert choose_display(ip_mycli, "auto") == "text"  # no kernel: terminal IPython
    assert choose_display(ip_mycli, "widget") == "widget"
    monkeypatch.setenv("MYCLI_DISPLAY", "text")
    assert choose_display(ip_mycli, "widget") == "text"


def test_timestamps_setting_prefixes_lines(engine_ip, capsys):
    engine_ip.run_line_magic("config", "MycliMagics.timestamps = True")
    engine_ip.run_cell("%%mycli --skip-git\necho stamped")
    assert re.search(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \| stamped$", capsys.readouterr().out, re.M)


def test_repeated_waits_do_not_repeat_lines(engine_ip):
    engine_ip.run_cell("%%mycli --skip-git --out h\nfor i in 1 2 3; do echo n$i; done")
    handle = last_handle(engine_ip)
    before = handle.logs
    handle.wait()
    handle.wait(check=True)
    assert handle.logs == before and before.count("n2") == 1


def test_configure_asks_for_the_key_and_never_shows_it(ip_mycli, monkeypatch, tmp_path, capsys):
    import getpass

    import yaml

    home = tmp_path / "home"
    monkeypatch.setenv("MYCLI_HOME", str(home))
    key = "nb-" + "s3cret" * 6
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": key)  # the user typing at the password prompt
    ip_mycli.run_line_magic("mycli", "configure --endpoint http://127.0.0.1:9 --profile nb --no-verify")
    saved = yaml.safe_load((home / "config.yaml").read_text())["profiles"]["nb"]
    assert saved == {"api_endpoint": "http://127.0.0.1:9/execute", "api_key": key}
    out = capsys.readouterr().out
    assert "✓ Configuration saved" in out and key not in out
    with pytest.raises(UsageError, match="leave out --api-key"):
        ip_mycli.run_line_magic("mycli", "configure --endpoint http://127.0.0.1:9 --api-key -")
    # a key written in the cell would stay in the notebook and its history: refused, nothing saved
    literal = "sk_live_" + "7" * 64
    with pytest.raises(UsageError, match="leave out --api-key and you will be asked") as info:
        ip_mycli.run_line_magic("mycli", f"configure --endpoint http://127.0.0.1:9 --profile typed --no-verify --api-key {literal}")
    assert literal not in str(info.value) and "\n" not in str(info.value)
    assert "typed" not in yaml.safe_load((home / "config.yaml").read_text())["profiles"]


def test_destroy_without_a_terminal_asks_for_force(ip_mycli, monkeypatch, tmp_path):
    monkeypatch.setenv("MYCLI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(UsageError, match="add --force"):
        ip_mycli.run_line_magic("mycli", "destroy --stack-name nb-test")


def test_a_relative_mycli_home_is_a_one_line_usage_error(ip_mycli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MYCLI_HOME", "rel-home")
    with pytest.raises(UsageError, match=r"^MYCLI_HOME must be an absolute path, not 'rel-home'"):
        ip_mycli.run_cell("%%mycli --skip-git\necho")
    assert not (tmp_path / "rel-home").exists()


def test_a_timeout_is_said_as_a_timeout_in_the_error_line(engine_ip):
    with pytest.raises(ExecutionFailed) as info:
        engine_ip.run_cell("%%mycli --skip-git --timeout 1 --out h\nsleep 30")
    ident = last_handle(engine_ip).execution_id
    assert info.value.returncode == 124
    assert str(info.value) == (f"remote command timed out (exit code 124: Timed out after 1 s, the run's --timeout) "
                               f"(execution {ident}; full log: %mycli logs {ident})")
