"""After a waiting `%%mycli` cell's run ends: its artifacts listed, saved beside the notebook
(`download_artifacts`, up to `download_limit_mb`) and handed to the view to show.

Nothing here fails the cell: the run's own result decides that. A listing or download that goes
wrong is one line in the view, naming how to get the files later.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import ApiRequestError, MycliError
from ..safe_text import escape_controls
from ..transfer import human_size
from .handle_files import notebook_dir

if TYPE_CHECKING:
    from .handle import Execution


def show_artifacts(handle: "Execution", view, download: bool, limit: int | None) -> None:
    """List the run's artifacts in `view`; with `download`, save them first (within `limit` bytes)."""
    try:
        listing = handle.artifact_listing(wait=True)
    except ApiRequestError as exc:
        if exc.status == 400:  # the request is ours and well formed: this engine has no artifacts to list
            return  # (one deployed before they existed), and a line in every cell would only be noise
        view.say(f"✗ Could not list the artifacts: {exc}")
        return
    except MycliError as exc:
        view.say(f"✗ Could not list the artifacts: {exc}")
        return
    if not listing.get("artifacts") and not listing.get("skipped") and not listing.get("reason"):
        return  # the command wrote nothing to $MYCLI_OUTPUTS: nothing to say
    notes = []
    ref = escape_controls(handle.execution_id)
    later = f"{view.settings.handle_name or 'handle'}.download() or %mycli artifacts {ref} -o DIR"
    if listing.get("artifacts"):
        if not download:
            notes.append(f"Not downloaded (MycliMagics.download_artifacts is off): {later}")
        else:
            try:
                saved = handle._save(limit=limit)
            except MycliError as exc:
                notes.append(f"✗ Could not download the artifacts: {exc}")
            else:
                notes += saved.notes()
                if saved.paths:
                    notes.append(f"Saved in {shown_dir(handle.artifacts_dir())}/ (sha256 checked)")
                if handle.left_out:
                    over = ", ".join(escape_controls(n) for n in handle.left_out)
                    notes.append(f"Not downloaded, over MycliMagics.download_limit_mb "
                                 f"({human_size(limit or 0)}): {over} — {later}")
    view.artifacts(handle, handle.artifacts, notes)


def shown_dir(path) -> str:
    """`path` relative to the notebook when it is under it (as the panel's links are)."""
    try:
        relative = os.path.relpath(path, notebook_dir())
    except ValueError:
        return str(path)
    return str(path) if relative.startswith("..") else relative
