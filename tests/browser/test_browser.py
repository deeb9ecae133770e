"""The widget panel as a user sees it: a real JupyterLab, Debian's Chromium driven headless by
Playwright, `%%mycli` cells run with Ctrl+Enter against an embedded engine the kernel starts.

Every wait is on a condition in the page (Playwright's expect / wait_for_function); the limits
only end a hang. The one timing assertion is the issue's own: a click on another cell is
handled within a second while 100,000 lines stream into the panel. Screenshots of each state
go to test-output/browser/ (see docs/browser-tests.md).
"""

from __future__ import annotations

import contextlib
import re

import pytest

from tests.support.browser_page import JS_ARM_LONGTASKS, NotebookPage
from tests.support.browser import CHROMIUM, launch_browser, start_lab, stop_lab

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"{CHROMIUM} is missing (Debian package chromium; .ci/run installs it)"),
]

LOAD = "%load_ext mycli_magic\nimport os\nprint('kernel pid', os.getpid())"
RUNNING = re.compile(r"^RUNNING · \d")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = start_lab(tmp_path_factory.mktemp("jupyterlab"))
    yield lab
    stop_lab(lab)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    browser = launch_browser(tmp_path_factory.mktemp("chromium-profile"))
    yield browser
    browser.close()


@pytest.fixture
def notebook(lab, browser, request):
    """open(cells) → a NotebookPage named after the test; on teardown: no widget error in the page
    or the console, a screenshot if the test failed, the notebook's kernel shut down."""
    opened: list[NotebookPage] = []
    seen_console, failures_before = len(browser.console), request.session.testsfailed

    def open_(cells: list[str]) -> NotebookPage:
        nb = NotebookPage(browser, lab, f"{request.node.name}.ipynb", cells)
        opened.append(nb)
        return nb

    yield open_
    failed = request.session.testsfailed > failures_before
    try:
        for nb in opened:
            if failed:
                with contextlib.suppress(Exception):  # the page may be what broke
                    nb.screenshot(f"FAILED-{request.node.name}")
            assert nb.widget_errors() == [], "the page shows a widget error"
        console = [text for kind, text in browser.console[seen_console:] if kind == "error"]
        if console:
            print("browser console errors:", *console, sep="\n  ")
        assert not [t for t in console if "model" in t.lower() or "widget" in t.lower()], console
    finally:
        for nb in opened:
            nb.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # imported once the browser is there

    return playwright_expect(locator)


def expect_text(locator, pattern, timeout: float = 30):
    expect(locator).to_have_text(pattern, timeout=timeout * 1000)


def expect_contains(locator, text, timeout: float = 30):
    expect(locator).to_contain_text(text, timeout=timeout * 1000)


def loaded(nb: NotebookPage) -> str:
    """Run the %load_ext cell; returns the kernel's pid line."""
    nb.run(0)
    expect_contains(nb.cell(0).locator(".jp-OutputArea"), "kernel pid")
    return nb.cell(0).locator(".jp-OutputArea").inner_text().strip()


def log_lines(nb: NotebookPage, index: int) -> list[str]:
    return nb.panel(index).locator(".mycli-log pre").inner_text().split("\n")


def test_panel_streams_while_running_then_shows_exit_code_and_duration(notebook):
    nb = notebook([LOAD, "%%mycli --skip-git\nfor i in 1 2 3 4 5; do echo line-$i; sleep 1; done", "#md The end."])
    loaded(nb)
    nb.run(1)
    panel = nb.panel(1)
    panel.wait_for()
    # One snapshot of the page: the badge says RUNNING, the cell is still executing, the first
    # line is there and the last is not: lines arrive while the command runs.
    seen = nb.page.wait_for_function(
        """cell => {
          const badge = cell.querySelector('.mycli-badge'), log = cell.querySelector('.mycli-log');
          if (!badge || !log) return false;
          const text = log.innerText;
          return badge.innerText.startsWith('RUNNING') && text.includes('line-1') && !text.includes('line-5')
            ? {badge: badge.innerText, prompt: cell.querySelector('.jp-InputPrompt').innerText, text} : false;
        }""", arg=nb.cell(1).element_handle(), polling="raf").json_value()
    assert seen["prompt"].strip() == "[*]:", seen
    assert "line-1" in seen["text"].split("\n")
    nb.screenshot("01-running-lines-arrive", 1)

    badge = panel.locator(".mycli-badge")
    expect_text(badge, re.compile(r"^STOPPED · exit 0 · \d+\.\d s$"))
    took = float(re.search(r"([\d.]+) s$", badge.inner_text()).group(1))
    assert took >= 4.0  # five one-second sleeps: the engine's figure, not our speed
    execution_id = panel.locator(".mycli-id").inner_text().strip()
    assert re.fullmatch(r"[0-9a-f]{12}", execution_id)
    expect_text(panel.locator(".mycli-summary"), re.compile(rf"^✓ {execution_id} · exit 0 · [\d.]+ s$"))
    assert [f"line-{i}" for i in range(1, 6)] == [line for line in log_lines(nb, 1) if line.startswith("line-")]
    assert re.fullmatch(r".+ · no git · local engine", panel.locator(".mycli-meta").inner_text())
    assert "interrupt the kernel" not in panel.inner_text()  # that hint is for the run while it lasts
    expect_text(nb.cell(1).locator(".jp-InputPrompt"), re.compile(r"^\[\d+\]:$"))
    assert not panel.get_by_role("button", name="Stop").is_visible()  # nothing left to stop
    nb.screenshot("02-stopped-exit-0", 1)

    light = nb.theme_colours(1)
    try:
        nb.choose_theme("JupyterLab Dark")
        dark = nb.theme_colours(1)
        nb.screenshot("02b-stopped-exit-0-dark-theme", 1)
    finally:
        nb.page.evaluate("() => window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Light'})")
    for colours in (light, dark):  # the panel wears the theme's colours and code font
        assert colours["panel_bg"] == colours["theme_bg"] and colours["panel_fg"] == colours["theme_fg"], colours
        assert colours["log_font"] == colours["code_font"], colours
    assert (light["theme_light"], dark["theme_light"]) == ("true", "false") and light["panel_bg"] != dark["panel_bg"]


def test_stop_button_stops_a_long_command(notebook):
    nb = notebook([LOAD, "%%mycli --skip-git --bg --out job\necho started; sleep 300; echo never"])
    loaded(nb)
    nb.run(1)
    panel = nb.panel(1)
    expect_contains(panel.locator(".mycli-log"), "started")
    expect_text(panel.locator(".mycli-badge"), RUNNING)
    stop = panel.get_by_role("button", name="Stop")
    assert stop.is_enabled()
    nb.screenshot("03-bg-running-before-stop", 1)
    stop.click()
    expect_text(panel.locator(".mycli-badge"), re.compile(r"^STOPPED · exit 130 · "))
    execution_id = panel.locator(".mycli-id").inner_text().strip()
    expect_contains(panel.locator(".mycli-summary"), f"■ {execution_id} · stopped (exit 130)")
    expect_contains(panel.locator(".mycli-note"), f"Stopped execution {execution_id} (exit 130)")
    assert "never" not in log_lines(nb, 1)
    nb.screenshot("04-stopped-by-the-stop-button", 1)


def test_100000_lines_keep_the_page_responsive(notebook):
    command = "for i in $(seq 0 19); do seq $((i*5000+1)) $((i*5000+5000)); sleep 0.25; done"
    nb = notebook([LOAD, f"%%mycli --skip-git --out big\n{command}", "#md Another cell to click.", "print('x')"])
    loaded(nb)
    nb.page.evaluate(JS_ARM_LONGTASKS)
    nb.run(1)
    panel = nb.panel(1)
    badge = panel.locator(".mycli-badge")
    expect_contains(panel.locator(".mycli-log"), "5000")
    latencies, while_running, target = [], 0, 2
    while len(latencies) < 12 and (while_running < 3 or len(latencies) < 4):
        running = badge.inner_text().startswith("RUNNING")
        latencies.append(nb.click_latency_ms(target))
        while_running += running
        target = 5 - target  # alternate between the markdown cell (2) and the code cell (3)
        if not running:
            break
    print(f"click → active cell, ms (first {while_running} while running): {[round(x) for x in latencies]}")
    assert while_running >= 1, "the run ended before a click could be made while it streamed"
    assert max(latencies) < 1000, latencies
    assert nb.newest_line_visible(1)
    nb.screenshot("05-100k-lines-while-running", 1)

    expect_text(badge, re.compile(r"^STOPPED · exit 0 · "), timeout=120)
    execution_id = panel.locator(".mycli-id").inner_text().strip()
    shown = log_lines(nb, 1)
    assert len(shown) == 2000 and "100000" in shown  # a bounded tail, with the newest lines
    assert nb.newest_line_visible(1)  # the box is scrolled to the end, not to the tail's first line
    note = panel.locator(".mycli-note")
    total = int(re.search(r"Showing the last 2,000 of ([\d,]+) lines", note.inner_text()).group(1).replace(",", ""))
    assert total > 100_000
    assert f"The whole log: %mycli logs {execution_id}, big.logs, or Save log." in note.inner_text()
    print(f"longest main-thread task during the run: {nb.page.evaluate('() => window.__mycliLongest'):.0f} ms")
    assert nb.click_latency_ms(2) < 1000
    panel.get_by_role("button", name="Save log").click()
    expect_contains(note, f"Saved the whole log ({total:,} lines) to ")
    saved = nb.lab.root / f"mycli-{execution_id}.log"
    assert len(saved.read_text().splitlines()) == total
    nb.screenshot("06-100k-lines-done-whole-log-saved", 1)


def test_background_panel_keeps_updating_in_its_own_cell(notebook, tmp_path):
    gate = tmp_path / "go"
    nb = notebook([LOAD,
                   f"%%mycli --skip-git --bg\necho bg-started; while [ ! -e {gate} ]; do sleep 0.1; done; echo bg-after-next-cell",
                   "print('the next cell ran')"])
    loaded(nb)
    nb.run(1)
    panel = nb.panel(1)
    expect_contains(panel.locator(".mycli-log"), "bg-started")
    expect_text(nb.cell(1).locator(".jp-InputPrompt"), re.compile(r"^\[\d+\]:$"))  # the cell returned at once
    nb.run(2)
    expect_text(nb.cell(2).locator(".jp-OutputArea"), "the next cell ran")
    assert "bg-after-next-cell" not in log_lines(nb, 1)
    gate.touch()  # only now can the background run print its last line and end
    expect_contains(panel.locator(".mycli-log"), "bg-after-next-cell")
    expect_text(panel.locator(".mycli-badge"), re.compile(r"^STOPPED · exit 0 · "))
    assert nb.cell(2).locator(".jp-OutputArea").inner_text().strip() == "the next cell ran"
    assert nb.cell(2).locator(".mycli-panel").count() == 0 and nb.cell(1).locator(".mycli-panel").count() == 1
    assert nb.cut_off(1) == []
    nb.screenshot("07-bg-panel-updated-after-next-cell", 1)


def test_attach_after_kernel_restart_shows_the_whole_log(notebook, tmp_path):
    gate = tmp_path / "go"
    nb = notebook([LOAD,
                   f"%%mycli --skip-git --bg\nseq -f 'early-%g' 1 300; while [ ! -e {gate} ]; do sleep 0.1; done; echo after-restart",
                   ""])
    before = loaded(nb)
    nb.run(1)
    panel = nb.panel(1)
    expect_contains(panel.locator(".mycli-log"), "early-300")
    execution_id = panel.locator(".mycli-id").inner_text().strip()
    stale = panel.locator(".mycli-stale")
    assert not stale.is_visible()

    nb.restart_kernel()
    nb.wait_kernel_idle()
    # the old panel can no longer update: it says so, and how to follow the run again
    expect_contains(stale, f"%mycli attach {execution_id}")
    expect(stale).to_be_visible()
    assert nb.cut_off(1) == []  # the long command is ellipsized, the note wraps
    nb.screenshot("08-old-panel-after-kernel-restart", 1)
    nb.run(0)
    expect(nb.cell(0).locator(".jp-OutputArea")).not_to_have_text(before)  # run again, in a new kernel
    expect_text(nb.cell(0).locator(".jp-OutputArea"), re.compile(r"kernel pid \d+"))
    nb.type_into(2, f"%mycli attach {execution_id}")
    nb.page.keyboard.press("Control+Enter")
    attached = nb.panel(2)
    expect_contains(attached.locator(".mycli-log"), "early-300")
    expect_text(attached.locator(".mycli-badge"), RUNNING)
    assert attached.locator(".mycli-id").inner_text().strip() == execution_id
    early = [line for line in log_lines(nb, 2) if line.startswith("early-")]
    assert early == [f"early-{i}" for i in range(1, 301)]  # every line from before the restart
    assert "mycli Remote Execution" in log_lines(nb, 2)[1]  # from the very first line
    assert nb.newest_line_visible(2)
    nb.screenshot("09-attached-after-restart-running", 2)
    gate.touch()
    expect_contains(attached.locator(".mycli-log"), "after-restart")
    expect_text(attached.locator(".mycli-badge"), re.compile(r"^STOPPED · exit 0 · "))
    nb.screenshot("10-attached-after-restart-finished", 2)


def test_artifacts_show_inline_under_the_log_and_their_link_opens_the_local_copy(notebook):
    svg = ("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"120\" height=\"60\">"
           "<rect x=\"10\" y=\"20\" width=\"30\" height=\"40\" fill=\"#1976d2\"/>"
           "<rect x=\"60\" y=\"5\" width=\"30\" height=\"55\" fill=\"#388e3c\"/></svg>")
    nb = notebook([LOAD, f"%%mycli --skip-git --out run\nprintf '%s' '{svg}' > \"$MYCLI_OUTPUTS/chart.svg\"\n"
                         "echo 'a,b' > \"$MYCLI_OUTPUTS/table.csv\""])
    loaded(nb)
    nb.run(1)
    panel = nb.panel(1)
    expect_text(panel.locator(".mycli-badge"), re.compile(r"^STOPPED · exit 0 · "))
    image = panel.locator(".mycli-artifacts img")
    expect(image).to_be_visible()
    size = image.evaluate("img => img.complete && [img.naturalWidth, img.naturalHeight]")
    assert size == [120, 60]  # the browser decoded the SVG the run wrote
    execution_id = panel.locator(".mycli-id").inner_text().strip()
    local = nb.lab.root / "mycli-runs" / execution_id / "chart.svg"
    assert local.read_text() == svg  # downloaded beside the notebook
    rows = panel.locator(".mycli-files tbody tr")
    expect(rows).to_have_count(2)
    assert rows.nth(1).inner_text().split() == ["table.csv", "4", "bytes"]
    aligned = panel.locator(".mycli-files").evaluate(
        "t => [...t.querySelectorAll('th, td')].map(c => getComputedStyle(c).textAlign)")
    assert aligned == ["left", "right"] + ["left", "right"] * 2, aligned  # names left under their header, as the log
    # under the log, above the summary line
    order = panel.evaluate("""p => ['.mycli-log', '.mycli-artifacts', '.mycli-summary']
        .map(s => p.querySelector(s).getBoundingClientRect().top)""")
    assert order == sorted(order), order
    nb.screenshot("11-artifacts-inline-image", 1)
    panel.locator(".mycli-files a", has_text="table.csv").click()
    # JupyterLab opens the local copy as a document in a new tab; the page stays where it was
    tab = nb.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="table.csv")
    expect(tab).to_be_visible()
    expect(nb.page.get_by_role("tabpanel", name="table.csv")).to_be_visible()  # JupyterLab's CSV viewer, on the copy
    expect(nb.page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=nb.name)).to_have_count(1)  # still JupyterLab
    nb.screenshot("12-artifact-link-opened-in-jupyterlab")
