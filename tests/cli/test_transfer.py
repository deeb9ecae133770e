"""Packing --upload paths and saving downloaded artifacts, on real files."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile

import pytest

from mycli_magic.errors import MycliError, UsageError
from mycli_magic.transfer import pack_uploads, save_stream, target_path


def test_a_file_and_a_directory_pack_under_their_basenames_with_modes(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "data" / "sub").mkdir()
    (tmp_path / "data" / "sub" / "tool.sh").write_text("#!/bin/sh\n")
    (tmp_path / "data" / "sub" / "tool.sh").chmod(0o750)
    (tmp_path / "model.bin").write_bytes(os.urandom(5000))
    work = tmp_path / "work"
    work.mkdir()
    packed = pack_uploads([tmp_path / "data", str(tmp_path / "model.bin")], work)
    assert packed.files == 3 and packed.content_bytes == 8 + 10 + 5000
    assert packed.sha256 == hashlib.sha256(packed.path.read_bytes()).hexdigest()
    with tarfile.open(packed.path) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert set(members) == {"data", "data/rows.csv", "data/sub", "data/sub/tool.sh", "model.bin"}
        assert stat.S_IMODE(members["data/sub/tool.sh"].mode) == 0o750
        assert members["model.bin"].uid == 0 and members["model.bin"].uname == ""
        assert tar.extractfile("model.bin").read() == (tmp_path / "model.bin").read_bytes()


def test_the_same_path_named_twice_goes_once(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rows.csv").write_text("a\n")
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    packed = pack_uploads(["data", str(tmp_path / "data"), "./data/"], work)
    assert packed.files == 1
    with tarfile.open(packed.path) as tar:
        assert sorted(m.name for m in tar.getmembers()) == ["data", "data/rows.csv"]


@pytest.mark.parametrize("case, message", [
    ("missing", "no such file or directory"),
    ("same name", "two paths are named 'x.txt'"),
    ("over cap", "more than the 1.0 KiB cap"),
])
def test_bad_uploads_are_refused_before_anything_is_packed(tmp_path, case, message):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "x.txt").write_bytes(b"1" * 600)
    (tmp_path / "b" / "x.txt").write_bytes(b"2" * 600)
    paths = {"missing": [tmp_path / "nope"], "same name": [tmp_path / "a" / "x.txt", tmp_path / "b" / "x.txt"],
             "over cap": [tmp_path / "a", tmp_path / "b"]}[case]
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(UsageError, match=message):
        pack_uploads(paths, work, cap=1024)
    assert list(work.iterdir()) == []


@pytest.mark.parametrize("name", ["../escape.txt", "/etc/cron.d/x", "a/../../b", "ok/\x1b]52;c;x\x07"])
def test_a_name_that_would_leave_the_directory_is_refused(tmp_path, name):
    with pytest.raises(MycliError, match="would not stay inside"):
        target_path(tmp_path, name)


def test_a_download_lands_only_when_size_and_sha256_match(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 5)
    good = hashlib.sha256(data).hexdigest()
    saved = save_stream(io.BytesIO(data), tmp_path / "out", "plots/fig.png", len(data), good)
    assert saved == tmp_path / "out" / "plots" / "fig.png" and saved.read_bytes() == data
    with pytest.raises(MycliError, match="did not match"):
        save_stream(io.BytesIO(data[:-1] + b"X"), tmp_path / "out", "bad.bin", len(data), good)
    with pytest.raises(MycliError, match="did not match"):
        save_stream(io.BytesIO(data + b"more"), tmp_path / "out", "long.bin", len(data), good)
    leftovers = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert leftovers == ["plots"]


def test_a_download_gets_the_mode_the_users_umask_gives_new_files(tmp_path):
    """Not the temporary file's 0600: a result is shared like any file the user makes."""
    import subprocess
    import sys

    code = ("import io, hashlib, os, sys; from pathlib import Path; from mycli_magic.transfer import save_stream; "
            "os.umask(int(sys.argv[2], 8)); d = b'chart'; "
            "p = save_stream(io.BytesIO(d), Path(sys.argv[1]), 'c.svg', len(d), hashlib.sha256(d).hexdigest()); "
            "print(oct(p.stat().st_mode & 0o777))")
    for umask, mode in (("022", "0o644"), ("027", "0o640"), ("077", "0o600")):
        out = subprocess.run([sys.executable, "-c", code, str(tmp_path / umask), umask], capture_output=True, text=True)
        assert out.stdout.strip() == mode, out.stderr


def members(packed) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(packed.path) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_a_named_link_sends_what_it_points_to(tmp_path):
    """`--upload data/link.csv` (a link) arrives as the file, as `cp` would copy it."""
    (tmp_path / "table.csv").write_bytes(b"a,b\n1,2\n")
    (tmp_path / "link.csv").symlink_to("table.csv")
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.txt").write_bytes(b"x")
    (tmp_path / "latest").symlink_to("real")
    (tmp_path / "work").mkdir()
    packed = pack_uploads([tmp_path / "link.csv", tmp_path / "latest"], tmp_path / "work")
    got = members(packed)
    assert got["link.csv"].isfile() and got["link.csv"].size == 8 and packed.files == 2
    assert got["latest"].isdir() and got["latest/x.txt"].isfile()
    with tarfile.open(packed.path) as tar:
        assert tar.extractfile("link.csv").read() == b"a,b\n1,2\n"


def test_links_inside_stay_links_links_out_are_replaced_by_their_target(tmp_path):
    """The one rule (upload_tree.py): kept when it stays inside the uploaded directory; what it
    points to otherwise (absolute, or `..` out of it, or out through a replaced link); a link
    to nowhere outside, and a loop, skipped with a line each."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    (data / "sub").mkdir(parents=True)
    outside.mkdir()
    (data / "a.csv").write_bytes(b"A")
    (outside / "big.bin").write_bytes(b"B" * 50)
    (outside / "back").symlink_to("../data")  # a loop once outside/ is replaced by its content
    (outside / "rel").symlink_to("big.bin")  # relative, but under a replaced link: replaced too
    links = {"in": "a.csv", "sub/up-in": "../a.csv", "sub/self": "..", "up-link": "../outside/big.bin",
             "abs": str(outside / "big.bin"), "outdir": "../outside", "gone": "/nonexistent/x", "gone-in": "nope"}
    for name, target in links.items():
        (data / name).symlink_to(target)
    (tmp_path / "work").mkdir()
    packed = pack_uploads([data], tmp_path / "work")
    got = members(packed)
    assert {n: m.linkname for n, m in got.items() if m.issym()} == {
        "data/in": "a.csv", "data/sub/up-in": "../a.csv", "data/sub/self": "..", "data/gone-in": "nope"}
    for name in ("data/up-link", "data/abs", "data/outdir/big.bin", "data/outdir/rel"):
        assert got[name].isfile() and got[name].size == 50, name
    assert got["data/outdir"].isdir()
    assert packed.files == 5 and packed.content_bytes == 1 + 4 * 50
    assert sorted(packed.skipped) == ["data/gone: a link to /nonexistent/x, which does not exist",
                                      "data/outdir/back: a link to a directory above it (a loop)"]


def test_what_is_sent_counts_against_the_cap_before_packing(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "big.bin").write_bytes(b"0" * 2000)
    (tmp_path / "data" / "big").symlink_to(tmp_path / "big.bin")
    (tmp_path / "work").mkdir()
    with pytest.raises(UsageError, match="more than the 1.0 KiB cap"):
        pack_uploads([tmp_path / "data"], tmp_path / "work", cap=1024)
    assert list((tmp_path / "work").iterdir()) == []


def test_sockets_and_fifos_are_skipped_with_a_line_each(tmp_path):
    import socket

    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.txt").write_bytes(b"ok")
    os.mkfifo(data / "pipe")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(data / "sock"))
    try:
        (tmp_path / "work").mkdir()
        packed = pack_uploads([data], tmp_path / "work")
    finally:
        sock.close()
    assert set(members(packed)) == {"data", "data/ok.txt"}
    assert sorted(packed.skipped) == ["data/pipe: a FIFO, not sent", "data/sock: a socket, not sent"]
    with pytest.raises(UsageError, match=r"--upload .*pipe: a FIFO, not a file or directory"):
        pack_uploads([data / "pipe"], tmp_path / "work")


def test_a_file_that_vanishes_during_the_scan_is_skipped_saying_so(tmp_path):
    """/proc/self/fd lists the descriptor its own listing used, closed before the scan looks at
    it: a name that is gone a moment later, as in a directory a job is writing in."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from mycli_magic.transfer import pack_uploads; "
            "p = pack_uploads(['/proc/self/fd'], Path(sys.argv[1])); print('\\n'.join(p.skipped))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         stdin=subprocess.DEVNULL, timeout=60)
    assert out.returncode == 0, out.stderr
    assert any(line.startswith("fd/") and line.endswith(": it vanished while being read")
               for line in out.stdout.splitlines()), out.stdout


@pytest.mark.parametrize("tool", [["tar"], ["busybox", "tar"]])
def test_the_archive_lists_the_same_in_tarfile_gnu_tar_and_busybox(tmp_path, tool):
    """The packer writes its own ustar headers (GNU ones for names over 100 bytes): every reader
    the engines use must see the same members — tarfile (embedded engine), GNU and busybox tar
    (the AWS fetch container)."""
    import shutil
    import subprocess

    if not shutil.which(tool[0]):
        pytest.fail(f"{tool[0]} is not installed")
    data = tmp_path / "data"
    deep = data / ("long-" * 25) / "ünïcode dir"
    deep.mkdir(parents=True)
    (deep / ("f" * 120 + ".csv")).write_bytes(b"x" * 1000)
    (data / "empty").write_bytes(b"")
    (data / "two-blocks.bin").write_bytes(os.urandom(1024))
    (data / "link").symlink_to("empty")
    (tmp_path / "work").mkdir()
    packed = pack_uploads([data], tmp_path / "work")
    with tarfile.open(packed.path) as tar:
        expected = sorted(m.name for m in tar.getmembers())
        assert tar.extractfile(f"data/{'long-' * 25}/ünïcode dir/{'f' * 120}.csv").read() == b"x" * 1000
    listed = subprocess.run([*tool, "-tzf", str(packed.path)], capture_output=True, check=True).stdout.decode()
    assert sorted(line.rstrip("/") for line in listed.splitlines()) == expected
    assert len(expected) == 7
