"""The panel's files section and the text view's list, rendered from real files on disk: links
relative to the notebook, images inlined only as data: URIs in <img> (an SVG's script never runs
in the page), big ones left as links, names from the run escaped."""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path

import pytest

from mycli_magic.notebook.handle_files import ArtifactList, notebook_dir
from mycli_magic.notebook.panel_files import MAX_INLINE_IMAGE_BYTES, files_html

SVG = b"<svg xmlns='http://www.w3.org/2000/svg' width='10' height='10'><script>alert(1)</script><rect/></svg>"
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def saved(tmp_path: Path, files: dict[str, bytes]) -> ArtifactList:
    """An ArtifactList as the handle gives it after a download into mycli-runs/ID/ here."""
    run_dir = tmp_path / "mycli-runs" / "0123456789ab"
    paths = {}
    for name, data in files.items():
        (run_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / name).write_bytes(data)
        paths[name] = run_dir / name
    listing = {"artifacts": [{"name": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "url": f"/a/{n}"}
                             for n, d in files.items()], "complete": True, "skipped": ["core: socket, not a regular file"]}
    return ArtifactList(listing, paths)


@pytest.fixture
def in_notebook_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_each_file_links_to_its_local_copy_relative_to_the_notebook(in_notebook_dir):
    page = files_html(saved(in_notebook_dir, {"plot.svg": SVG, "out/rows b.csv": b"a,b\n"}), ["Saved in mycli-runs/x/"])
    hrefs = re.findall(r"href='([^']*)'", page)
    assert hrefs[0] == "mycli-runs/0123456789ab/plot.svg"
    assert "mycli-runs/0123456789ab/out/rows%20b.csv" in hrefs
    assert "4 bytes" in page and "Saved in mycli-runs/x/" in page and "→ Skipped core: socket, not a regular file" in page


def test_images_are_inlined_as_data_uris_and_an_svg_never_as_markup(in_notebook_dir):
    page = files_html(saved(in_notebook_dir, {"plot.svg": SVG, "dot.png": PNG, "notes.txt": b"hi"}), [])
    sources = re.findall(r"<img alt='([^']*)' src='([^']*)'>", page)
    assert [alt for alt, _ in sources] == ["plot.svg", "dot.png"]
    assert sources[0][1] == "data:image/svg+xml;base64," + base64.b64encode(SVG).decode()
    assert sources[1][1] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert "<script" not in page and "<svg" not in page


def test_a_big_image_stays_a_link(in_notebook_dir):
    page = files_html(saved(in_notebook_dir, {"huge.png": PNG + b"\0" * MAX_INLINE_IMAGE_BYTES}), [])
    assert "<img" not in page and "href='mycli-runs/0123456789ab/huge.png'" in page


def test_a_name_from_the_run_is_escaped_in_html(in_notebook_dir):
    listing = {"artifacts": [{"name": "<img src=x onerror=alert(1)>.txt", "size": 1, "sha256": "0" * 64}]}
    page = files_html(ArtifactList(listing, {}), [])
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;.txt" in page


def test_beside_the_notebook_is_where_jupyter_says_the_notebook_is(tmp_path, monkeypatch):
    notebook = tmp_path / "project" / "analysis.ipynb"
    notebook.parent.mkdir()
    notebook.write_text("{}")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    assert notebook_dir() == notebook.parent
    monkeypatch.setenv("JPY_SESSION_NAME", "not/a/path.ipynb")  # not an absolute file: the working directory
    assert notebook_dir() == tmp_path


def test_the_text_views_list_is_aligned_and_says_where_they_are(in_notebook_dir, capsys):
    from mycli_magic.notebook.text_view import TextView
    from mycli_magic.notebook.view_settings import ViewSettings

    TextView(ViewSettings()).artifacts(None, saved(in_notebook_dir, {"plot.svg": SVG, "rows.csv": b"a,b\n"}),
                                       ["Saved in mycli-runs/0123456789ab/ (sha256 checked)"])
    lines = capsys.readouterr().out.splitlines()
    svg_sha = hashlib.sha256(SVG).hexdigest()[:12]
    assert lines[0].split() == ["NAME", "SIZE", "SHA256"] and lines[0].startswith("  NAME ")
    assert lines[1].split() == ["plot.svg", str(len(SVG)), "bytes", svg_sha]
    assert lines[2].split()[:3] == ["rows.csv", "4", "bytes"]
    assert lines[3] == "Saved in mycli-runs/0123456789ab/ (sha256 checked)"  # skipped files: the log has them
    assert len(lines) == 4
