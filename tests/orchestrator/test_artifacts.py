"""Collecting a run's outputs from a real directory tree a hostile command could have made."""

from __future__ import annotations

import hashlib
import os
import stat
import threading

import pytest

from orchestrator.artifacts import collect, name_problem, shown_name, valid_name


def tree(root, files: dict[str, bytes]):
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def test_regular_files_at_any_depth_come_back_byte_for_byte(tmp_path):
    blob = os.urandom(3 * 1024 * 1024 + 17)
    outputs = tree(tmp_path / "out", {"plot.png": b"\x89PNG..", "data/deep/er/results.csv": b"a,b\n1,2\n", "big.bin": blob,
                                      "ünïcode name.txt": b"x"})
    got = collect(outputs, tmp_path / "store")
    by_name = {a.name: a for a in got.artifacts}
    assert sorted(by_name) == ["big.bin", "data/deep/er/results.csv", "plot.png", "ünïcode name.txt"]
    assert by_name["big.bin"].size == len(blob)
    assert by_name["big.bin"].sha256 == hashlib.sha256(blob).hexdigest()
    assert (tmp_path / "store" / "big.bin").read_bytes() == blob
    assert stat.S_IMODE((tmp_path / "store" / "big.bin").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "store" / "data" / "deep").stat().st_mode) == 0o700
    assert got.skipped == []


def test_links_devices_and_pipes_are_never_followed_or_read(tmp_path):
    secret = tmp_path / "engine.db"
    secret.write_bytes(b"every command and log line")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "shadow").write_bytes(b"root:*:")
    outputs = tree(tmp_path / "out", {"ok.txt": b"fine"})
    (outputs / "db-link").symlink_to(secret)
    (outputs / "etc-link").symlink_to("/etc/passwd")
    (outputs / "dir-link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (outputs / "sub").mkdir()
    (outputs / "sub" / "up").symlink_to("../../engine.db")
    os.mkfifo(outputs / "fifo")
    result = {}
    worker = threading.Thread(target=lambda: result.update(got=collect(outputs, tmp_path / "store")))
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "collect() blocked (on the FIFO?)"
    got = result["got"]
    assert [a.name for a in got.artifacts] == ["ok.txt"]
    stored = sorted(str(p.relative_to(tmp_path / "store")) for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert stored == ["ok.txt"]
    skipped = "\n".join(got.skipped)
    for name in ("db-link", "etc-link", "dir-link", "sub/up", "fifo"):
        assert name in skipped
    assert b"every command" not in b"".join(p.read_bytes() for p in (tmp_path / "store").rglob("*") if p.is_file())


def test_caps_per_file_and_per_run_skip_and_say_so(tmp_path):
    outputs = tree(tmp_path / "out", {"a.bin": b"a" * 600, "b.bin": b"b" * 300, "c.bin": b"c" * 2000, "d.bin": b"d" * 200})
    got = collect(outputs, tmp_path / "store", max_file_bytes=1000, max_run_bytes=1000)
    assert [a.name for a in got.artifacts] == ["a.bin", "b.bin"]
    skipped = "\n".join(got.skipped)
    assert "c.bin: 2,000 bytes, over the per-file cap of 1,000" in skipped
    assert "d.bin: 200 bytes would exceed the per-run cap of 1,000" in skipped
    assert not (tmp_path / "store" / "c.bin").exists()


def test_a_removed_outputs_directory_or_odd_names_are_said_not_fatal(tmp_path):
    got = collect(tmp_path / "gone", tmp_path / "store")
    assert got.artifacts == [] and "removed" in got.skipped[0]
    outputs = tree(tmp_path / "out", {"line\nbreak.txt": b"x", "esc\x1b]52;c;AAAA\x07.txt": b"y", "ok": b"z"})
    got = collect(outputs, tmp_path / "store2")
    assert [a.name for a in got.artifacts] == ["ok"]
    assert len(got.skipped) == 2


def test_a_name_that_is_not_utf8_is_skipped_alone_and_shown_escaped(tmp_path):
    outputs = tmp_path / "out"
    outputs.mkdir()
    (outputs / "results.csv").write_bytes(b"1\n")
    with open(os.path.join(os.fsencode(outputs), b"caf\xe9.csv"), "wb") as fh:  # a Latin-1 name
        fh.write(b"2\n")
    got = collect(outputs, tmp_path / "store")
    assert [a.name for a in got.artifacts] == ["results.csv"]
    assert got.skipped == ["'caf\\xe9.csv': not a usable name (not UTF-8)"]
    "\n".join(got.skipped).encode("utf-8")  # the line itself can be stored and sent


@pytest.mark.parametrize("name, problem", [
    ("back\\slash.txt", "a backslash (a path separator on Windows)"), ("a\nb", "control characters"),
    ("x" * 1025, "longer than 1,024 characters"), ("a/../b", "not a plain relative path"),
    (os.fsdecode(b"\xff"), "not UTF-8"), ("\ud800", "not UTF-8"),
])
def test_each_unusable_name_says_what_is_wrong_with_it(name, problem):
    assert name_problem(name) == problem
    shown_name(name).encode("utf-8")


@pytest.mark.parametrize("name, ok", [
    ("plot.png", True), ("a/b/c.csv", True), ("ünï.txt", True), ("..", False), ("a/../b", False), ("/etc/passwd", False),
    ("./x", False), ("a//b", False), ("", False), ("a\nb", False), ("a\x9bb", False), ("a\\b", False), ("x" * 1025, False),
    (os.fsdecode(b"caf\xe9"), False),
])
def test_valid_name(name, ok):
    assert valid_name(name) is ok
