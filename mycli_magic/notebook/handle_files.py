"""The execution handle's files: `h.artifacts`, `h.download(dir=None)`, `h.open(name)`.

A run's artifacts land in `mycli-runs/<execution id>/` beside the notebook — the directory of
the notebook the kernel runs (Jupyter tells the kernel in $JPY_SESSION_NAME), else the working
directory — so the panel's links, relative to the notebook, open the local copies in JupyterLab.
"""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import IO

from ..errors import MycliError
from ..safe_text import escape_controls
from ..transfer import RUNS_DIR, human_size


def notebook_dir() -> Path:
    """Where the notebook is (absolute), as far as the kernel can tell."""
    session = os.environ.get("JPY_SESSION_NAME") or ""
    if os.path.isabs(session) and os.path.isfile(session):
        return Path(session).parent
    return Path.cwd()


class ArtifactList(list):
    """The artifacts of a run as dicts (name, size, sha256, url, and `path` once saved here): a
    table in HTML, aligned lines in a terminal."""

    def __init__(self, listing: dict, paths: dict[str, Path]):
        super().__init__({**a, "path": paths.get(str(a.get("name")))} for a in listing.get("artifacts") or [])
        self.listing = listing

    def __repr__(self) -> str:
        from ..downloads import listing_lines

        return "\n".join(listing_lines(self.listing))

    def _repr_html_(self) -> str:
        if not self:
            return f"<p>{html.escape(repr(self))}</p>"
        cell = "<{0} style='text-align:left'>{1}</{0}>"
        head = "".join(cell.format("th", h) for h in ("name", "size", "sha256", "saved as"))
        rows = "".join(
            "<tr>" + "".join(cell.format("td", html.escape(v)) for v in (
                escape_controls(a.get("name")), human_size(int(a.get("size") or 0)), str(a.get("sha256") or "")[:12],
                str(a["path"]) if a.get("path") else "")) + "</tr>"
            for a in self)
        return f"<table class='mycli-artifacts'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


class ArtifactFiles:
    """Mixed into the Execution handle (which provides `client`, `ref`, `execution_id`)."""

    _artifact_listing: dict | None = None
    _local_paths: dict[str, Path]
    left_out: tuple[str, ...] | list[str] = ()  # names the last download() left out (over its limit)

    @property
    def artifacts(self) -> ArtifactList:
        """The files the run left in $MYCLI_OUTPUTS (asked for once collection is complete)."""
        return ArtifactList(self.artifact_listing(), self._paths())

    def artifact_listing(self, wait: bool = False) -> dict:
        """The API's artifacts answer; `wait`: until collection is complete (it follows the run's end)."""
        if self._artifact_listing is None:
            from ..downloads import listing_when_complete

            listing = listing_when_complete(self.client, self.ref) if wait else self.client.artifacts(self.ref)
            if listing.get("complete") is False:
                return listing
            self._artifact_listing = listing
        return self._artifact_listing

    def artifacts_dir(self) -> Path:
        """`mycli-runs/<execution id>/` beside the notebook (absolute)."""
        return notebook_dir() / RUNS_DIR / str(self.execution_id)

    def download(self, dir: str | os.PathLike | None = None, limit: int | None = None) -> list[Path]:  # noqa: A002 (the documented name)
        """Save every artifact (sha256 checked) under `dir` (default: mycli-runs/<id>/ beside the
        notebook); returns their absolute paths. One already there with the same sha256 is kept;
        a different one is set aside as NAME.~N~ (a ⚠ line says so), never replaced silently."""
        saved = self._save(dir, limit)
        for note in saved.notes():
            print(note)
        return saved.paths

    def _save(self, dir: str | os.PathLike | None = None, limit: int | None = None):  # noqa: A002
        """download(), returning the whole downloads.Saved (its notes are the caller's to show)."""
        from ..downloads import download

        directory = Path(dir).expanduser().resolve() if dir is not None else self.artifacts_dir()
        listing = self.artifact_listing(wait=True)
        saved = download(self.client, listing, directory, limit)
        names = [str(a["name"]) for a in listing.get("artifacts") or [] if str(a["name"]) not in saved.left_out]
        self._paths().update(zip(names, saved.paths))
        self.left_out = saved.left_out
        return saved

    def path(self, name: str) -> Path:
        """The local copy of artifact `name`, downloaded into mycli-runs/<id>/ first if needed."""
        paths = self._paths()
        if name not in paths or not paths[name].is_file():
            listing = self.artifact_listing(wait=True)
            known = [a for a in listing.get("artifacts") or [] if a.get("name") == name]
            if not known:
                names = ", ".join(str(a.get("name")) for a in listing.get("artifacts") or []) or "none"
                raise MycliError(f"execution {self.execution_id} has no artifact {name!r} (it has: {escape_controls(names)})")
            from ..downloads import download

            saved = download(self.client, {**listing, "artifacts": known}, self.artifacts_dir())
            for note in saved.notes():
                print(note)
            paths[name] = saved.paths[0]
        return paths[name]

    def open(self, name: str, mode: str = "rb") -> IO:
        """The local copy of artifact `name`, opened (downloaded first if needed): `h.open("out.csv", "r")`."""
        if any(c in mode for c in "wax+"):
            raise ValueError("artifacts open for reading only (mode 'r' or 'rb')")
        return open(self.path(name), mode, **({} if "b" in mode else {"encoding": "utf-8"}))

    def _paths(self) -> dict[str, Path]:
        if not hasattr(self, "_local_paths"):
            self._local_paths = {}
        return self._local_paths
