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
