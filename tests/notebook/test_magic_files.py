"""Files in and out of %%mycli cells, in a real IPython shell against a real mycli server: the
artifacts of a waiting cell land in mycli-runs/<id>/ beside the notebook and are listed (text)
or shown with links and inline images (panel); the handle's artifacts/download/open; uploads and
local changes from the cell's options line."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from IPython.core.error import UsageError

from mycli_magic.errors import MycliError

from tests.support.cli import git, make_repo_with_origin

PLOT = ('printf \'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="%s" height="20"/></svg>\' 30 '
        '> "$MYCLI_OUTPUTS/plot.svg"')
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="40" height="20"><rect width="30" height="20"/></svg>'


def test_a_waiting_cells_artifacts_are_saved_beside_the_notebook_and_listed(engine_ip, capsys, tmp_path):
    engine_ip.run_cell(f'%%mycli --skip-git --out h\n{PLOT}\nprintf "a,b\\n" > "$MYCLI_OUTPUTS/rows.csv"')
    h = engine_ip.user_ns["h"]
    run_dir = tmp_path / "work" / "mycli-runs" / h.execution_id
    assert (run_dir / "plot.svg").read_bytes() == SVG and (run_dir / "rows.csv").read_bytes() == b"a,b\n"
    out = capsys.readouterr().out.splitlines()
    start = out.index(f"Saved in mycli-runs/{h.execution_id}/ (sha256 checked)")
    assert out[start - 3].split() == ["NAME", "SIZE", "SHA256"]
    assert out[start - 2].split()[:3] == ["plot.svg", str(len(SVG)), "bytes"]
    assert out[-1].startswith(f"✓ {h.execution_id} · exit 0")  # the summary stays last
    assert [a["name"] for a in h.artifacts] == ["plot.svg", "rows.csv"]
    assert h.artifacts[0]["path"] == run_dir / "plot.svg"
    assert h.artifacts[0]["sha256"] == hashlib.sha256(SVG).hexdigest()
    with h.open("rows.csv", "r") as fh:
        assert fh.read() == "a,b\n"
    elsewhere = h.download(tmp_path / "elsewhere")
    assert [p.read_bytes() for p in elsewhere] == [SVG, b"a,b\n"]
    with pytest.raises(MycliError, match=f"execution {h.execution_id} has no artifact 'nope.txt' "
                                         r"\(it has: plot.svg, rows.csv\)"):
        h.open("nope.txt")
    with pytest.raises(ValueError, match="for reading only"):
        h.open("rows.csv", "w")
    assert (run_dir / "rows.csv").read_bytes() == b"a,b\n"


def test_a_failing_cell_still_brings_its_outputs_back(engine_ip, tmp_path):
    from mycli_magic.notebook.handle import ExecutionFailed

    with pytest.raises(ExecutionFailed):
        engine_ip.run_cell('%%mycli --skip-git --out h\necho partial > "$MYCLI_OUTPUTS/log.txt"; exit 4')
    h = engine_ip.user_ns["h"]
    assert (tmp_path / "work" / "mycli-runs" / h.execution_id / "log.txt").read_text() == "partial\n"


def test_switched_off_or_over_the_limit_they_are_listed_not_fetched(engine_ip, capsys, tmp_path):
    engine_ip.run_line_magic("config", "MycliMagics.download_artifacts = False")
    engine_ip.run_cell(f"%%mycli --skip-git --out h\n{PLOT}")
    h = engine_ip.user_ns["h"]
    assert not (tmp_path / "work" / "mycli-runs").exists()
    assert f"Not downloaded (MycliMagics.download_artifacts is off): h.download() or %mycli artifacts {h.execution_id} -o DIR" \
        in capsys.readouterr().out
    engine_ip.run_line_magic("config", "MycliMagics.download_artifacts = True")
    engine_ip.run_line_magic("config", "MycliMagics.download_limit_mb = 0.00005")  # 52 bytes: not the plot
    engine_ip.run_cell(f'%%mycli --skip-git --out h\n{PLOT}\nprintf 1 > "$MYCLI_OUTPUTS/small.txt"')
    h = engine_ip.user_ns["h"]
    assert [p.name for p in (tmp_path / "work" / "mycli-runs" / h.execution_id).iterdir()] == ["small.txt"]
    assert "Not downloaded, over MycliMagics.download_limit_mb (52 bytes): plot.svg — h.download()" in capsys.readouterr().out


def test_the_panel_lists_them_with_links_and_shows_the_image_inline(engine_ip, tmp_path):
    from mycli_magic.notebook.panel import PanelView
    from mycli_magic.notebook.results import show_artifacts
    from mycli_magic.notebook.view_settings import ViewSettings

    engine_ip.run_cell(f"%%mycli --skip-git --out h\n{PLOT}")
    h = engine_ip.user_ns["h"]
    view = PanelView(ViewSettings(handle_name="h"))
    view.show(h, background=False, live=False)
    show_artifacts(h, view, download=True, limit=None)
    view.finished(h)
    assert view.widget.children[-2] is view.files and view.widget.children[-1] is view.summary
    (output,) = view.files.outputs
    page = output["data"]["text/html"]
    assert f"href='mycli-runs/{h.execution_id}/plot.svg'" in page
    assert f"src='data:image/svg+xml;base64,{base64.b64encode(SVG).decode()}'" in page


def test_mycli_artifacts_lists_and_downloads(engine_ip, tmp_path, capsys):
    engine_ip.run_line_magic("config", "MycliMagics.download_artifacts = False")
    engine_ip.run_cell('%%mycli --skip-git --out h\nprintf x > "$MYCLI_OUTPUTS/x.bin"')
    ident = engine_ip.user_ns["h"].execution_id
    listed = engine_ip.run_line_magic("mycli", f"artifacts {ident}")
    assert [a["name"] for a in listed] == ["x.bin"] and listed[0]["path"] is None
    assert "x.bin" in repr(listed) and "x.bin" in listed._repr_html_()
    saved = engine_ip.run_line_magic("mycli", f"artifacts {ident} -o {tmp_path / 'dl'}")
    assert saved[0]["path"] == tmp_path / "dl" / "x.bin" and (tmp_path / "dl" / "x.bin").read_bytes() == b"x"
    assert f"✓ Saved 1 file, 1 byte to {tmp_path / 'dl'} (sha256 checked)" in capsys.readouterr().out


def test_uploads_and_local_changes_from_the_cell(engine_ip, tmp_path, capsys, monkeypatch):
    origin, work = make_repo_with_origin(tmp_path / "repo")
    (work / "which.txt").write_text("my edit\n")
    (tmp_path / "input.csv").write_bytes(b"x,y\n1,2\n")
    monkeypatch.chdir(work)
    engine_ip.run_cell(f"%%mycli --local-changes --upload {tmp_path / 'input.csv'} --out h\n"
                       'cat which.txt; cat "$MYCLI_INPUTS/input.csv"')
    out = capsys.readouterr().out
    assert "my edit\n" in out and "x,y\n1,2\n" in out
    first, second = out.splitlines()[:2]  # what goes along, before the run's header
    assert re.fullmatch(r"→ Local changes: 1 changed file on top of [0-9a-f]{12} \([0-9,]+ bytes\)", first), first
    assert second == "→ Upload: input.csv (1 file, 8 bytes) → $MYCLI_INPUTS"
    git("checkout", "--quiet", "which.txt", cwd=work)


def test_the_notebooks_downloads_never_ride_along_with_local_changes(engine_ip, tmp_path, capsys, monkeypatch):
    """A cell's artifacts land in mycli-runs/ID/ beside the notebook, in the repository: the next
    --local-changes cell carries the user's edit, not them (mycli-runs/ has a .gitignore of `*`)."""
    origin, work = make_repo_with_origin(tmp_path / "repo")
    monkeypatch.chdir(work)
    engine_ip.run_cell('%%mycli --skip-git --out first\nhead -c 3000 /dev/urandom > "$MYCLI_OUTPUTS/features.bin"')
    saved = work / "mycli-runs" / engine_ip.user_ns["first"].execution_id / "features.bin"
    assert saved.stat().st_size == 3000
    assert (work / "mycli-runs" / ".gitignore").read_text().splitlines()[-1] == "*"
    assert git("status", "--porcelain", cwd=work) == ""  # git itself ignores mycli's downloads
    (work / "which.txt").write_text("my edit\n")
    capsys.readouterr()
    engine_ip.run_cell("%%mycli --local-changes\ncat which.txt; ls -A mycli-runs 2>&1 | head -3; echo listed")
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("→ Local changes: 1 changed file on top of"), out
    assert "my edit\n" in out and "features.bin" not in out and "No such file or directory" in out, out
    git("checkout", "--quiet", "which.txt", cwd=work)


def test_an_interrupt_while_the_upload_is_packed_is_one_line(engine_ip, tmp_path, watch_stdout, monkeypatch):
    import os
    import signal
    import tempfile
    import threading
    import time

    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    (tmp_path / "big95.bin").write_bytes(os.urandom(95 * 1024 * 1024))  # random: packing it takes seconds
    main = threading.get_ident()

    def interrupt_once_packing():
        deadline = time.monotonic() + 60
        while not list(temp.glob("mycli-upload-*")) and time.monotonic() < deadline:
            time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_once_packing, daemon=True).start()
    watch = watch_stdout()
    before = len(engine_ip.run_line_magic("mycli", "list"))
    with pytest.raises(KeyboardInterrupt):
        engine_ip.run_cell(f"%%mycli --skip-git --upload {tmp_path / 'big95.bin'}\necho RAN; sleep 20")
    shown = watch.text.strip().splitlines()
    assert re.fullmatch(r"■ Interrupted while (packing the files to send; nothing was sent or started|"
                        r"sending the files; nothing was started)", shown[-1]), shown
    assert "Traceback" not in watch.text and "KeyboardInterrupt" not in watch.text and "RAN" not in watch.text
    assert len(engine_ip.run_line_magic("mycli", "list")) == before and list(temp.glob("mycli-upload-*")) == []


@pytest.mark.parametrize("line, words", [
    ("--skip-git --local-changes", "drop one of them"),
    ("--skip-git --upload /nonexistent/x", "--upload /nonexistent/x: no such file or directory"),
])
def test_mistakes_in_the_options_are_one_line(engine_ip, line, words):
    with pytest.raises(UsageError, match=re.escape(words)):
        engine_ip.run_cell(f"%%mycli {line}\ntrue")
