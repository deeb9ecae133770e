"""Files in and out through the real `mycli` executable and a real embedded engine: --upload
arrives byte for byte with its modes, --local-changes runs the working tree, --wait --download
and `mycli artifacts -o` save what the run wrote to $MYCLI_OUTPUTS, sha256 checked; mistakes are
one line before anything is sent."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

import pytest

from tests.support.cli import Cli, git, make_repo_with_origin


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Cli:
    cli = Cli(tmp_path_factory.mktemp("files-home"))
    yield cli
    cli.stop_engine()


def executions(cli: Cli) -> int:
    proc = cli.run("list", "--json", "--limit", "1000")
    assert proc.returncode == 0, proc.stderr
    return len(json.loads(proc.stdout)["executions"])


def test_uploads_arrive_byte_for_byte_readable_by_anyone(cli, tmp_path):
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    payload = os.urandom(300_000)
    (data / "sub" / "blob.bin").write_bytes(payload)
    (data / "run.sh").write_text("#!/bin/sh\necho ran\n")
    (data / "run.sh").chmod(0o750)
    (tmp_path / "notes.txt").write_text("one file\n")
    proc = cli.run("exec", "--skip-git", "--wait", "--upload", str(data), "--upload", str(tmp_path / "notes.txt"),
                   'cd "$MYCLI_INPUTS" && sha256sum data/sub/blob.bin && stat -c "%a %n" data/run.sh && '
                   "./data/run.sh && cat notes.txt && ls", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"{hashlib.sha256(payload).hexdigest()}  data/sub/blob.bin" in proc.stdout
    assert "755 data/run.sh" in proc.stdout and "ran\n" in proc.stdout and "one file\n" in proc.stdout  # u+x: a+x
    assert "→ Upload: data, notes.txt (3 files, " in proc.stderr


def test_an_upload_over_the_cap_is_one_line_and_starts_nothing(cli, tmp_path):
    before = executions(cli)
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:
        fh.truncate(100 * 1024 * 1024 + 1)  # sparse: 100 MiB and a byte
    proc = cli.run("exec", "--skip-git", "--upload", str(big), "true", cwd=tmp_path)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "more than the 100.0 MiB cap" in proc.stderr and "nothing was sent" in proc.stderr
    assert executions(cli) == before


def test_wait_download_saves_the_outputs_with_their_sha256(cli, tmp_path):
    out = tmp_path / "results"
    proc = cli.run("exec", "--skip-git", "--wait", "--download", str(out),
                   'mkdir -p "$MYCLI_OUTPUTS/tables" && printf "<svg/>" > "$MYCLI_OUTPUTS/plot.svg" && '
                   'seq 1 1000 > "$MYCLI_OUTPUTS/tables/n.csv"', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (out / "plot.svg").read_bytes() == b"<svg/>"
    assert (out / "tables" / "n.csv").read_text() == "".join(f"{i}\n" for i in range(1, 1001))
    assert "✓ Saved 2 files, " in proc.stderr and str(out.resolve()) in proc.stderr


def test_artifacts_lists_then_downloads_and_json_names_the_paths(cli, tmp_path):
    run = cli.run("exec", "--json", "--skip-git", "--wait", 'printf hello > "$MYCLI_OUTPUTS/greeting.txt"; exit 3', cwd=tmp_path)
    assert run.returncode == 3, run.stderr  # a failed run's outputs come back too
    ident = json.loads(run.stdout)["execution_id"]
    listed = cli.run("artifacts", ident)
    assert listed.returncode == 0, listed.stderr
    sha = hashlib.sha256(b"hello").hexdigest()
    assert listed.stdout.splitlines()[0].split() == ["NAME", "SIZE", "SHA256"]
    assert listed.stdout.splitlines()[1].split() == ["greeting.txt", "5", "bytes", sha[:12]]
    saved = cli.run("artifacts", ident, "-o", str(tmp_path / "dl"), "--json")
    assert saved.returncode == 0, saved.stderr
    answer = json.loads(saved.stdout)
    assert answer["artifacts"][0]["sha256"] == sha
    assert answer["artifacts"][0]["path"] == str((tmp_path / "dl" / "greeting.txt").resolve())
    assert (tmp_path / "dl" / "greeting.txt").read_bytes() == b"hello"
    url = json.loads(cli.run("artifacts", ident, "--json").stdout)["artifacts"][0]["url"]
    assert re.fullmatch(rf"http://127\.0\.0\.1:\d+/artifacts/{ident}/greeting\.txt", url), url  # one to fetch, not a path
    import urllib.request

    request = urllib.request.Request(url, headers={"X-API-Key": cli.local_profile()["api_key"]})
    with urllib.request.urlopen(request, timeout=30) as resp:
        assert resp.read() == b"hello"


def test_a_run_with_no_outputs_lists_none(cli, tmp_path):
    run = cli.exec_json("--skip-git", "--wait", "true", cwd=tmp_path)
    proc = cli.run("artifacts", run["execution_id"], "-o", str(tmp_path / "none"))
    assert proc.returncode == 0 and "No artifacts" in proc.stdout and not (tmp_path / "none").exists()


def test_local_changes_run_the_working_tree(cli, tmp_path):
    origin, work = make_repo_with_origin(tmp_path / "repo")
    git("commit", "--quiet", "--allow-empty", "-m", "local only", cwd=work)  # not pushed
    (work / "which.txt").write_text("edited, not committed\n")
    (work / "new.txt").write_text("untracked\n")
    (work / "tool.sh").write_text("#!/bin/sh\necho tool\n")
    (work / "tool.sh").chmod(0o755)
    plain = cli.run("exec", "--wait", "cat which.txt; ls", cwd=work)
    assert plain.returncode == 0 and "feature\n" in plain.stdout and "new.txt" not in plain.stdout
    assert "--local-changes runs your working tree" in plain.stderr
    carried = cli.run("exec", "--wait", "--local-changes", "cat which.txt new.txt; ./tool.sh; git log --format=%s -1",
                      cwd=work)
    assert carried.returncode == 0, carried.stdout + carried.stderr
    assert carried.stdout.count("edited, not committed\n") == 1 and "untracked\n" in carried.stdout
    assert "tool\n" in carried.stdout and "local only\n" in carried.stdout
    assert re.search(r"→ Local changes: 1 local commit and 3 changed files \(2 untracked\) on top of [0-9a-f]{12}",
                     carried.stderr), carried.stderr
    assert "--local-changes runs your working tree" not in carried.stderr


@pytest.mark.parametrize("args, words", [
    (["--skip-git", "--local-changes"], "drop one of them"),
    (["--skip-git", "--download", "d"], "--download needs --wait"),
    (["--skip-git", "--upload", "/nonexistent/x"], "--upload /nonexistent/x: no such file or directory"),
])
def test_mistakes_are_one_line_and_start_nothing(cli, tmp_path, args, words):
    before = executions(cli)
    proc = cli.run("exec", *args, "true", cwd=tmp_path)
    assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert executions(cli) == before


def test_local_changes_outside_a_repository_says_where_to_run_it(cli, tmp_path):
    proc = cli.run("exec", "--repo", "https://example.invalid/x.git", "--local-changes", "true", cwd=tmp_path)
    assert proc.returncode == 2 and "is not in a git repository" in proc.stderr


def test_downloaded_files_do_not_keep_remote_modes_beyond_the_users_umask(cli, tmp_path):
    proc = cli.run("exec", "--skip-git", "--wait", "--download", str(tmp_path / "o"),
                   'printf x > "$MYCLI_OUTPUTS/f"; chmod 4777 "$MYCLI_OUTPUTS/f"', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    mode = stat.S_IMODE((tmp_path / "o" / "f").stat().st_mode)
    assert not mode & (stat.S_ISUID | stat.S_IWOTH)


def test_downloading_from_a_run_still_going_says_so_at_once(cli, tmp_path):
    gate = tmp_path / "gate"
    run = cli.exec_json("--skip-git", f"while [ ! -e {gate} ]; do sleep 0.05; done", cwd=tmp_path)
    try:
        proc = cli.run("artifacts", run["execution_id"], "-o", str(tmp_path / "dl"))
        assert proc.returncode == 1, proc.stderr
        assert re.search(r"is still (PENDING|RUNNING): its artifacts are collected when it ends", proc.stderr)
        listed = cli.run("artifacts", run["execution_id"])
        assert listed.returncode == 0 and "… still being collected" in listed.stdout
    finally:
        gate.touch()


def test_ctrl_c_while_the_upload_is_packed_or_sent_is_one_line_and_starts_nothing(cli, tmp_path):
    import signal
    import time

    from tests.support.cli import Cli

    before = executions(cli)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(95 * 1024 * 1024))  # random: packing it takes seconds
    temp = tmp_path / "tmp"
    temp.mkdir()
    proc = Cli(cli.home, {**cli.extra_env, "TMPDIR": str(temp)}).popen(
        "exec", "--skip-git", "--upload", str(big), "echo RAN", cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not list(temp.glob("mycli-upload-*")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the archive's directory: packing has begun
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"■ Interrupted while (packing the files to send; nothing was sent or started|"
                        r"sending the files; nothing was started)", last), err
    assert "Traceback" not in err and "RAN" not in out
    assert list(temp.glob("mycli-upload-*")) == []  # the archive is gone
    assert executions(cli) == before


def test_links_in_uploads_arrive_as_the_data_the_user_sees(cli, tmp_path):
    """The trial's cases: a named link (was a dangling link in the run), an absolute link inside a
    directory (was refused by the engine after the whole upload: 'upload it again')."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "table.csv").write_text("a,b\n1,2\n")
    (data / "link.csv").symlink_to("table.csv")
    (tmp_path / "host.txt").write_text("from outside\n")
    (data / "abs-link").symlink_to(tmp_path / "host.txt")
    (data / "nowhere").symlink_to("/nonexistent/x")
    os.mkfifo(data / "pipe")
    proc = cli.run("exec", "--skip-git", "--wait", "--upload", str(data / "link.csv"), "--upload", str(data),
                   'cat "$MYCLI_INPUTS/link.csv" "$MYCLI_INPUTS/data/abs-link"; ls "$MYCLI_INPUTS/data"', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "a,b\n1,2\nfrom outside\n" in proc.stdout
    assert "nowhere" not in proc.stdout and "pipe" not in proc.stdout
    assert "⚠ Upload: skipped data/nowhere: a link to /nonexistent/x, which does not exist" in proc.stderr
    assert "⚠ Upload: skipped data/pipe: a FIFO, not sent" in proc.stderr


def test_a_name_that_is_not_utf8_is_skipped_and_the_rest_downloaded(cli, tmp_path):
    out = tmp_path / "res"
    proc = cli.run("exec", "--skip-git", "--wait", "--download", str(out),
                   'cd "$MYCLI_OUTPUTS"; echo 1 > results.csv; echo 2 > "$(printf "caf\\351.csv")"', cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "→ Skipped 'caf\\xe9.csv': not a usable name (not UTF-8)" in proc.stdout
    assert (out / "results.csv").read_text() == "1\n" and os.listdir(out) == ["results.csv"]
    assert "✓ Saved 1 file, 2 bytes" in proc.stderr and "wrote nothing" not in proc.stderr


def test_a_collection_that_failed_is_said_and_a_download_exits_1(tmp_path):
    from tests.support.disk import small_tmpfs

    with small_tmpfs(tmp_path / "home", "12m") as home:  # the run's outputs and their copy share it
        cli = Cli(home)
        try:
            proc = cli.run("exec", "--skip-git", "--wait", "--download", str(tmp_path / "dl"),
                           'head -c 7000000 /dev/zero > "$MYCLI_OUTPUTS/big.bin"', cwd=tmp_path)
            assert proc.returncode == 1, proc.stderr
            assert re.search(r"nothing to save in \S+: collection failed \(.*No space left on device", proc.stderr)
            assert "wrote nothing" not in proc.stderr + proc.stdout
            ident = re.search(r"Execution ([0-9a-f]{12}) finished with exit code 0", proc.stderr).group(1)
            listed = cli.run("artifacts", ident)
            assert "✗ No artifacts: collection failed (" in listed.stdout, listed.stdout
            again = cli.run("artifacts", ident, "-o", str(tmp_path / "dl2"))
            assert again.returncode == 1 and "nothing to save in" in again.stderr
        finally:
            cli.stop_engine()


def test_a_different_file_in_the_download_dir_is_set_aside_never_replaced_silently(cli, tmp_path):
    out = tmp_path / "r9"
    out.mkdir()
    (out / "summary.csv").write_text("MY PRECIOUS HAND-EDITED RESULTS\n")
    (out / "same.txt").write_text("same\n")
    for content in ("new", "newer"):
        proc = cli.run("exec", "--skip-git", "--wait", "--download", str(out),
                       f'echo {content} > "$MYCLI_OUTPUTS/summary.csv"; echo same > "$MYCLI_OUTPUTS/same.txt"', cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    assert (out / "summary.csv").read_text() == "newer\n"
    assert (out / "summary.csv.~1~").read_text() == "MY PRECIOUS HAND-EDITED RESULTS\n"
    assert (out / "summary.csv.~2~").read_text() == "new\n"
    assert sorted(os.listdir(out)) == ["same.txt", "summary.csv", "summary.csv.~1~", "summary.csv.~2~"]  # same content: kept
    assert f"⚠ {out / 'summary.csv'} was a different file: it is now summary.csv.~2~ beside it" in proc.stderr
    assert proc.stderr.count("⚠") == 1  # same.txt, the same content, is kept without a word
