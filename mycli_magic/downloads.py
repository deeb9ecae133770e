"""What comes back from a run: its artifacts listed, waited for, and saved with their sha256
checked. Shared by `mycli artifacts`, `mycli exec --wait --download` and the notebook.

A file is saved only inside the chosen directory and only once its size and sha256 are what
the engine listed (transfer.save_stream); one already there with the same size and sha256 is
kept, not fetched again, so downloading twice costs nothing; a different one is set aside as
NAME.~N~, never replaced silently. A notebook's `mycli-runs/` gets a
`.gitignore` of `*` when mycli first saves into it: git, and so --local-changes, leave it alone.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import MycliError
from .transfer import RUNS_DIR, file_sha256, files_and_size, human_size, save_stream, target_path

if TYPE_CHECKING:
    from .client import ApiClient

COMPLETE_WAIT_SECONDS = 60.0


@dataclass
class Saved:
    paths: list[Path] = field(default_factory=list)  # in listing order
    left_out: list[str] = field(default_factory=list)  # names over the size limit, not fetched
    fetched_bytes: int = 0
    set_aside: list[tuple[Path, Path]] = field(default_factory=list)  # (target, where the different file there went)

    def notes(self) -> list[str]:
        """`⚠ results/summary.csv was a different file: it is now summary.csv.~1~`, one per file set aside."""
        from .safe_text import escape_controls

        return [f"⚠ {escape_controls(str(target))} was a different file: it is now {escape_controls(kept.name)} "
                "beside it (the run's file took its name)" for target, kept in self.set_aside]


def total_size(listing: dict) -> int:
    return sum(int(a.get("size") or 0) for a in listing.get("artifacts") or [])


def describe(listing: dict) -> str:
    """`3 files, 1.2 MiB`."""
    return files_and_size(len(listing.get("artifacts") or []), total_size(listing))


def saved_line(listing: dict, directory: Path | str) -> str:
    """`✓ Saved 3 files, 1.2 MiB to /abs/dir (sha256 checked)`: every front's words after a download."""
    return f"✓ Saved {describe(listing)} to {Path(directory).expanduser().resolve()} (sha256 checked)"


def nothing_saved_words(listing: dict) -> str:
    """Why a complete listing has no artifacts, in words: the engine's reason (a collection that
    failed, outputs that were never published), every file skipped, or nothing written."""
    from .safe_text import escape_controls

    if listing.get("reason"):
        return escape_controls(listing["reason"])
    if listing.get("skipped"):
        return "every file in $MYCLI_OUTPUTS was skipped (the → Skipped lines say why)"
    return "the command wrote nothing to $MYCLI_OUTPUTS"


def collection_failed(listing: dict) -> bool:
    """A complete listing with no artifacts because of the engine (its `reason`), not the command:
    a download asked for then has failed, and says so with exit 1."""
    return not listing.get("artifacts") and bool(listing.get("reason"))


def listing_when_complete(client: "ApiClient", ref: str, timeout: float = COMPLETE_WAIT_SECONDS) -> dict:
    """The artifacts answer once collection has finished (it runs just after the command ends);
    MycliError at once if the run is still going, or if collection has not finished in `timeout` s."""
    deadline, delay, checked = time.monotonic() + timeout, 0.1, False
    while True:
        listing = client.artifacts(ref)
        if listing.get("complete") is not False:
            return listing
        if not checked:
            status = client.status(ref).get("status")
            if status != "STOPPED":
                from .safe_text import escape_controls

                raise MycliError(f"execution {ref} is still {escape_controls(status)}: its artifacts are collected "
                                 "when it ends; ask again then")
            checked = True
        if time.monotonic() >= deadline:
            raise MycliError(f"the artifacts of execution {ref} are still being collected after {timeout:.0f} s; "
                             "ask again in a moment")
        time.sleep(delay)
        delay = min(delay * 1.5, 2.0)


def download(client: "ApiClient", listing: dict, directory: Path | str, limit: int | None = None) -> Saved:
    """Save every listed artifact under `directory`; with `limit` (bytes), the ones that would take
    the total over it are left out (named in `left_out`). MycliError on a mismatch or a bad name,
    before that file is written."""
    directory = Path(directory).expanduser()
    saved, planned = Saved(), 0
    artifacts = listing.get("artifacts") or []
    for artifact in artifacts:  # every name checked before anything is written
        target_path(directory, str(artifact.get("name", "")))
    if artifacts and directory.parent.name == RUNS_DIR:
        ignored_by_git(directory.parent)
    for artifact in artifacts:
        name, size, sha256 = str(artifact["name"]), int(artifact.get("size") or 0), str(artifact.get("sha256") or "")
        if limit is not None and planned + size > limit:
            saved.left_out.append(name)
            continue
        planned += size
        target = target_path(directory, name)
        if _already_there(target, size, sha256):
            saved.paths.append(target)
            continue
        with client.open_file(str(artifact.get("url") or "")) as stream:
            try:
                saved.paths.append(save_stream(stream, directory, name, size, sha256,
                                               lambda target: _set_aside(target, saved)))
            except OSError as exc:  # a full disk, a directory we may not write, a file in the way
                raise MycliError(f"cannot save {target}: {exc.strerror or exc}; nothing was saved under that name") from None
        saved.fetched_bytes += size
    return saved


def ignored_by_git(runs_dir: Path) -> None:
    """A `.gitignore` of `*` in mycli's downloads dir (made here if need be), unless it has one:
    earlier runs' artifacts are not the user's work, and must not ride along with --local-changes
    or show in `git status`. A directory we may not write is left as it is (the save says why)."""
    marker = runs_dir / ".gitignore"
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        with open(marker, "x", encoding="utf-8") as fh:
            fh.write("# mycli's downloads: the artifacts of runs (kept out of git and of --local-changes)\n*\n")
    except OSError:  # there already, or not ours to write
        pass


def _set_aside(target: Path, saved: Saved) -> None:
    """A different file where an artifact goes is the user's data: never replaced silently. It
    keeps its content under the first free `NAME.~N~` (GNU cp --backup=numbered's names), and
    the run's file takes the name, so a script reading DIR/NAME reads this run's result."""
    if not os.path.lexists(target):
        return
    number = 1
    while os.path.lexists(kept := target.with_name(f"{target.name}.~{number}~")):
        number += 1
    os.rename(target, kept)
    saved.set_aside.append((target, kept))


def _already_there(target: Path, size: int, sha256: str) -> bool:
    try:
        return target.is_file() and not target.is_symlink() and target.stat().st_size == size and file_sha256(target) == sha256
    except OSError:
        return False


def listing_lines(listing: dict) -> list[str]:
    """The artifacts as aligned lines (name, size, sha256's first 12), then what was skipped."""
    from .safe_text import escape_controls

    artifacts = listing.get("artifacts") or []
    rows = [(escape_controls(a.get("name")), human_size(int(a.get("size") or 0)), str(a.get("sha256") or "")[:12])
            for a in artifacts]
    lines = []
    if rows:
        width = max(len("NAME"), *(len(r[0]) for r in rows))
        size_width = max(len("SIZE"), *(len(r[1]) for r in rows))
        lines.append(f"{'NAME'.ljust(width)}  {'SIZE'.rjust(size_width)}  SHA256")
        lines += [f"{n.ljust(width)}  {s.rjust(size_width)}  {h}" for n, s, h in rows]
    elif listing.get("complete") is not False:
        lines.append(f"{'✗' if collection_failed(listing) else '→'} No artifacts: {nothing_saved_words(listing)}.")
    lines += [f"→ Skipped {escape_controls(line)}" if not str(line).startswith("→") else escape_controls(line)
              for line in listing.get("skipped") or []]
    if listing.get("reason") and rows:
        lines.append(f"⚠ {escape_controls(listing['reason'])}")
    if listing.get("complete") is False:
        lines.append("… still being collected (the run has not finished, or has only just)")
    return lines
