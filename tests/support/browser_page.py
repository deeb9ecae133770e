"""One notebook in a JupyterLab page, driven the way a user drives it: click a cell's prompt,
Ctrl+Enter, the Stop button, Kernel → Restart Kernel…, Settings → Theme, typing in a cell. The
JavaScript here only *reads* the page (what is visible, how long a click took, which colours the
browser resolved); `window.jupyterapp` is read for the kernel's state.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.browser import Browser, Lab, write_notebook
from tests.support.server import ROOT

SCREENSHOTS = ROOT / "test-output" / "browser"
WIDGET_ERRORS = ("Error displaying widget", "could not find model")

JS_KERNEL_IDLE = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  const kernel = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}"""

# Arms a one-shot probe: the time of the next mousedown (the browser's own event timestamp, so time
# spent queued behind a busy main thread counts) and the time the target cell became active.
JS_ARM_CLICK_PROBE = """cell => {
  const probe = window.__mycliClick = {down: null, active: null};
  document.addEventListener('mousedown', e => { probe.down = e.timeStamp; }, {capture: true, once: true});
  const seen = () => {
    if (probe.down !== null && probe.active === null && cell.classList.contains('jp-mod-active')) {
      probe.active = performance.now(); observer.disconnect();
    }
  };
  const observer = new MutationObserver(seen);
  observer.observe(cell, {attributes: true, attributeFilter: ['class']});
}"""

# The longest main-thread task since the observer was armed (the Long Tasks API: > 50 ms each).
JS_ARM_LONGTASKS = """() => {
  window.__mycliLongest = 0;
  new PerformanceObserver(list => {
    for (const e of list.getEntries()) window.__mycliLongest = Math.max(window.__mycliLongest, e.duration);
  }).observe({type: 'longtask', buffered: false});
}"""


# Is the log's newest line inside the visible part of its scroll box (what the user sees)?
JS_NEWEST_LINE_VISIBLE = """cell => {
  const box = cell.querySelector('.mycli-log'), pre = box && box.querySelector('pre');
  if (!pre) return false;
  const range = document.createRange();
  range.selectNodeContents(pre);
  const rects = range.getClientRects(), last = rects[rects.length - 1], view = box.getBoundingClientRect();
  return !!last && last.top >= view.top - 1 && last.bottom <= view.bottom + 1;
}"""

# The panel's colours and fonts against JupyterLab's theme variables, resolved by the browser.
JS_THEME_CHECK = """cell => {
  const panel = cell.querySelector('.mycli-panel'), pre = cell.querySelector('.mycli-log pre');
  const probe = document.createElement('div');
  probe.style.cssText = 'background: var(--jp-layout-color1); color: var(--jp-ui-font-color1); font-family: var(--jp-code-font-family)';
  document.body.appendChild(probe);
  const want = getComputedStyle(probe), got = getComputedStyle(panel), log = getComputedStyle(pre);
  const out = {theme_light: document.body.dataset.jpThemeLight, panel_bg: got.backgroundColor, theme_bg: want.backgroundColor,
               panel_fg: got.color, theme_fg: want.color, log_font: log.fontFamily, code_font: want.fontFamily};
  probe.remove();
  return out;
}"""


# Parts of the panel that reach past its right edge (cut off instead of wrapped or ellipsized).
JS_CUT_OFF = """cell => {
  const panel = cell.querySelector('.mycli-panel'), edge = panel.getBoundingClientRect().right;
  return Array.from(panel.querySelectorAll('.mycli-head, .mycli-cmd, .mycli-stale, .mycli-log, .mycli-note, .mycli-summary'))
    .filter(e => e.getClientRects().length && e.getBoundingClientRect().right > edge + 1).map(e => e.className);
}"""


class NotebookPage:
    """One notebook open in its own JupyterLab page, driven like a user: click, keys, menus."""

    def __init__(self, browser: Browser, lab: Lab, name: str, cells: list[str]):
        self.lab, self.name = lab, name
        self.path = write_notebook(lab.root / name, cells)
        self.page = browser.context.new_page()
        self.page.set_default_timeout(30_000)
        self.page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
        self.page.wait_for_function(JS_KERNEL_IDLE, timeout=90_000, polling=100)
        self.cells = self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell")
        from playwright.sync_api import expect

        expect(self.cells).to_have_count(len(cells))

    def cell(self, index: int):
        return self.cells.nth(index)

    def panel(self, index: int):
        return self.cell(index).locator(".mycli-panel")

    def select(self, index: int) -> None:
        """Click the cell's prompt area: selects it in command mode, as a user does."""
        self.cell(index).locator(".jp-InputPrompt").click()

    def run(self, index: int) -> None:
        """Select the cell and run it with Ctrl+Enter (does not wait for it to finish)."""
        self.select(index)
        self.page.keyboard.press("Control+Enter")

    def type_into(self, index: int, text: str) -> None:
        self.cell(index).locator(".cm-content").click()
        self.page.keyboard.type(text)

    def text(self, index: int) -> str:
        return self.cell(index).inner_text()

    def wait_kernel_idle(self, timeout: float = 60) -> None:
        self.page.wait_for_function(JS_KERNEL_IDLE, timeout=timeout * 1000, polling=100)

    def restart_kernel(self) -> None:
        """Kernel menu → Restart Kernel… → Restart, as a user does."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
        self.page.locator(".jp-Dialog button.jp-mod-accept").click()
        self.page.locator(".jp-Dialog").wait_for(state="detached")

    def click_latency_ms(self, index: int) -> float:
        """Click the cell's prompt area; ms from the mousedown to the cell becoming active."""
        target = self.cell(index)
        self.page.evaluate(JS_ARM_CLICK_PROBE, target.element_handle())
        target.locator(".jp-InputPrompt").click()
        self.page.wait_for_function("() => window.__mycliClick.active !== null", timeout=30_000, polling="raf")
        return self.page.evaluate("() => window.__mycliClick.active - window.__mycliClick.down")

    def newest_line_visible(self, index: int) -> bool:
        return self.page.evaluate(JS_NEWEST_LINE_VISIBLE, self.cell(index).element_handle())

    def cut_off(self, index: int) -> list[str]:
        return self.page.evaluate(JS_CUT_OFF, self.cell(index).element_handle())

    def theme_colours(self, index: int) -> dict:
        return self.page.evaluate(JS_THEME_CHECK, self.cell(index).element_handle())

    def choose_theme(self, name: str) -> None:
        """Settings menu → Theme → `name`, as a user does; waits until the page has it."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Settings").click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
        self.page.locator(".lm-Menu-itemLabel", has_text=name).first.click()
        light = "false" if "Dark" in name else "true"
        self.page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{light}'"
                                    f" && document.body.dataset.jpThemeName === {name!r}")

    def widget_errors(self) -> list[str]:
        body = self.page.locator("body").inner_text()
        return [e for e in WIDGET_ERRORS if e.lower() in body.lower()]

    def screenshot(self, name: str, index: int | None = None) -> Path:
        """Save the page (the cell scrolled into view) as test-output/browser/<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        if index is not None:
            self.cell(index).scroll_into_view_if_needed()
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        print(f"screenshot: {path}")
        return path

    def close(self) -> None:
        """Shut the notebook's kernel down (its --bg followers with it) and close the page."""
        try:
            for session in self.lab.api("GET", "/api/sessions") or []:
                if session.get("path", "").endswith(self.name):
                    self.lab.api("DELETE", f"/api/sessions/{session['id']}")
        finally:
            self.page.close()
