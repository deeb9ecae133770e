"""The panel's files section: the run's artifacts (name, size, a link to the local copy) and its
images (PNG, JPEG, GIF, SVG) shown inline, under the log.

It is rendered as an HTML *output* inside an `Output` widget, not as a widget value: JupyterLab
resolves the relative links of an output against the notebook's directory and opens them as
documents in JupyterLab, where a widget's HTML would send the browser to a bare URL. Images are
inlined as base64 `data:` URIs through `<img>` (an SVG shown that way runs no script), so they
show in any frontend; big ones are left as links.
"""

from __future__ import annotations

import base64
import html
import os
import urllib.parse
from pathlib import Path

from ..safe_text import escape_controls
from ..transfer import human_size
from .handle_files import notebook_dir

IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".svg": "image/svg+xml"}
MAX_INLINE_IMAGE_BYTES = 2 * 1024 * 1024  # each
MAX_INLINE_TOTAL_BYTES = 8 * 1024 * 1024  # all of a run's images together


def inline_images(files: list) -> dict[str, tuple[str, bytes]]:
    """name → (MIME type, bytes) of the saved artifacts that are images small enough to show
    inline (each up to MAX_INLINE_IMAGE_BYTES, all up to MAX_INLINE_TOTAL_BYTES), in order."""
    images, inlined = {}, 0
    for artifact in files:
        size, path = int(artifact.get("size") or 0), artifact.get("path")
        kind = IMAGE_TYPES.get(Path(str(artifact.get("name"))).suffix.lower())
        if path is None or not kind or size > MAX_INLINE_IMAGE_BYTES or inlined + size > MAX_INLINE_TOTAL_BYTES:
            continue
        try:
            data = Path(path).read_bytes()
        except OSError:
            continue
        inlined += size
        images[str(artifact.get("name"))] = (kind, data)
    return images


def img_html(kind: str, data: bytes, alt: str) -> str:
    """An image as `<img>` with a base64 `data:` URI: an SVG shown this way runs no script."""
    return f"<img alt='{html.escape(alt, quote=True)}' src='data:{kind};base64,{base64.b64encode(data).decode()}'>"


# inline, not only in STYLE: JupyterLab's own rules for an output's tables (right-aligned cells,
# a centred header) win over a stylesheet's of the same specificity
_LEFT = " style='text-align:left'"


def files_html(files: list, notes: list[str]) -> str:
    """`files`: the handle's ArtifactList (dicts with name, size and, once saved, path)."""
    rows, images, shown = [], [], inline_images(files)
    for artifact in files:
        name = escape_controls(artifact.get("name"))
        size = int(artifact.get("size") or 0)
        path = artifact.get("path")
        label = html.escape(name)
        if path is not None:
            label = f"<a href='{html.escape(_href(Path(path)), quote=True)}' title='open the local copy'>{label}</a>"
            if str(artifact.get("name")) in shown:
                kind, data = shown[str(artifact.get("name"))]
                images.append(f"<figure class='mycli-image'>{img_html(kind, data, name)}<figcaption>{label}</figcaption></figure>")
        rows.append(f"<tr><td{_LEFT}>{label}</td><td class='mycli-size' style='text-align:right'>"
                    f"{html.escape(human_size(size))}</td></tr>")
    table = (f"<table class='mycli-files'><thead><tr><th{_LEFT}>artifact</th><th style='text-align:right'>size</th></tr>"
             f"</thead><tbody>{''.join(rows)}</tbody></table>") if rows else ""
    skipped = [f"→ Skipped {escape_controls(line)}" for line in getattr(files, "listing", {}).get("skipped") or []]
    note = "<br>".join(html.escape(line) for line in [*skipped, *notes])
    return (f"<div class='mycli-artifacts'>{table}{''.join(images)}"
            f"{f'<div class=mycli-note>{note}</div>' if note else ''}</div>{STYLE}")


def _href(path: Path) -> str:
    """A link relative to the notebook (JupyterLab opens it as a document there)."""
    try:
        relative = os.path.relpath(path, notebook_dir())
    except ValueError:
        relative = str(path)
    return urllib.parse.quote(relative.replace(os.sep, "/"))


STYLE = """<style>
.mycli-artifacts { font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: var(--jp-ui-font-size1, 13px);
  color: var(--jp-ui-font-color1, #222); }
.mycli-files { border-collapse: collapse; margin: 4px 0; }
.mycli-files th, .mycli-files td { text-align: left; padding: 1px 12px 1px 0; border: none; }
.mycli-files th { color: var(--jp-ui-font-color2, #666); font-weight: 600; }
.mycli-files td.mycli-size { text-align: right; font-family: var(--jp-code-font-family, monospace); }
.mycli-files a, .mycli-image a { color: var(--jp-content-link-color, #1976d2); text-decoration: underline; }
.mycli-image { display: inline-block; margin: 4px 12px 4px 0; }
.mycli-image img { max-width: 480px; max-height: 360px; background: #fff; border: 1px solid var(--jp-border-color2, #e0e0e0); }
.mycli-image figcaption { font-size: var(--jp-ui-font-size0, 11px); color: var(--jp-ui-font-color2, #666); }
.mycli-artifacts .mycli-note { color: var(--jp-ui-font-color2, #666); font-size: var(--jp-ui-font-size0, 11px); line-height: 1.5; }
</style>"""
