"""--local-changes and what it must not carry: mycli's own downloads (mycli-runs/, at any depth,
with or without the .gitignore mycli now writes there), and a tree over the upload cap — refused
before git reads the files, naming the biggest untracked ones. Real git repositories."""

from __future__ import annotations

import io
import os
import re
import tarfile

import pytest

from mycli_magic.errors import UsageError
from mycli_magic.local_changes import capture
from mycli_magic.uploads import prepare
from tests.support.cli import git, make_repo_with_origin


@pytest.fixture
def work(tmp_path):
    return make_repo_with_origin(tmp_path / "repo")[1]


def patch_of(changes) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(changes.archive)) as tar:
        return tar.extractfile("patch").read()


def test_mycli_downloads_are_never_carried_wherever_they_are(work):
    """Directories an older mycli made have no .gitignore: they are left out by name."""
    for runs in (work / "mycli-runs" / "6b111ec00109", work / "notebooks" / "mycli-runs" / "aaaaaaaaaaaa"):
        runs.mkdir(parents=True)
        (runs / "features.bin").write_bytes(os.urandom(4000))
    (work / "notes.txt").write_text("mine\n")
    changes = capture(work, "feature")
    assert (changes.files, changes.untracked) == (1, 1)
    patch = patch_of(changes)
    assert b"notes.txt" in patch and b"mycli-runs" not in patch


def test_over_the_cap_is_refused_before_git_reads_a_byte(work):
    (work / "data").mkdir()
    (work / "data" / "embeddings.npy").write_bytes(os.urandom(3000))
    (work / "emb2.npy").write_bytes(os.urandom(1500))
    (work / "small.txt").write_text("s\n")
    objects = git("count-objects", "-v", cwd=work)
    with pytest.raises(UsageError) as caught:
        capture(work, "feature", cap=4000)
    message = str(caught.value)
    assert message.startswith("--local-changes carries your uncommitted work within the 3.9 KiB upload cap")
    assert "the biggest untracked files: data/embeddings.npy (2.9 KiB), emb2.npy (1.5 KiB), small.txt (2 bytes)" in message
    assert ".gitignore" in message and message.endswith("nothing was sent")
    assert git("count-objects", "-v", cwd=work) == objects  # nothing hashed into the repository


def test_a_patch_bigger_than_its_files_is_refused_before_it_is_sent(work):
    """Random bytes do not compress, and a binary patch writes them in base85: 25% more."""
    (work / "blob.bin").write_bytes(os.urandom(3000))
    with pytest.raises(UsageError, match=r"they pack to 3\.\d KiB: the biggest untracked files: blob\.bin"):
        capture(work, "feature", cap=3400)
    assert capture(work, "feature", cap=8000).untracked == 1


def test_the_local_changes_line_says_how_much_is_sent(work):
    (work / "which.txt").write_text("edited\n")
    with prepare([], True, {"branch": "feature"}, cwd=work) as prepared:
        line, = prepared.lines
        size = prepared.changes.size
    assert re.fullmatch(r"→ Local changes: 1 changed file on top of [0-9a-f]{12} \([0-9,]+ bytes\)", line), line
    assert line.endswith(f"({size:,} bytes)")
