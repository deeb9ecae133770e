"""JupyterLab in headless Chromium for tests/browser/test_browser.py: a real `jupyter lab` server with
its own token, port, root dir, Jupyter dirs and MYCLI_HOME, and a Playwright page on Debian's
Chromium (the page itself: tests/browser_page.py).

Nothing of the machine leaks in: JUPYTER_CONFIG_DIR / DATA_DIR / RUNTIME_DIR, IPYTHONDIR and
the JupyterLab settings and workspaces dirs are temporary; only the installation's own files
(sys.prefix: the lab extensions, ipywidgets' manager, the python3 kernel) are shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from tests.support.server import clean_env

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
START_TIMEOUT = 90.0
# JupyterLab user settings: no news or update checks (this machine has no outside network, and a
# toast would cover the cells), no "kernel busy" confirmation on restart.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false", "checkForUpdates": False},
}


@dataclass
class Lab:
    """A running JupyterLab: `url` (no token), `token`, its notebook `root`, `home` (MYCLI_HOME)."""

    url: str
    token: str
    root: Path
    home: Path
    env: dict
    proc: subprocess.Popen
    log_path: Path

    def api(self, method: str, path: str, body: dict | None = None) -> dict | None:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                     headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def lab_env(base: Path, home: Path) -> dict:
    """Our environment minus anything Jupyter or mycli would read from the machine, plus temp dirs."""
    env = clean_env(home)
    for name in list(env):
        if name.startswith(("JUPYTER", "JPY_", "IPYTHON")) or name == "MYCLI_DISPLAY":
            env.pop(name)
    dirs = {"JUPYTER_CONFIG_DIR": "jupyter-config", "JUPYTER_DATA_DIR": "jupyter-data",
            "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "IPYTHONDIR": "ipython",
            "JUPYTERLAB_SETTINGS_DIR": "lab-settings", "JUPYTERLAB_WORKSPACES_DIR": "lab-workspaces"}
    for name, sub in dirs.items():
        path = base / sub
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    for rel, values in LAB_SETTINGS.items():
        target = Path(env["JUPYTERLAB_SETTINGS_DIR"]) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values))
    return env


def start_lab(base: Path) -> Lab:
    """`jupyter lab` on 127.0.0.1, port chosen by the OS, a random token; waits until it answers."""
    root, home = base / "root", base / "mycli-home"
    root.mkdir(parents=True)
    home.mkdir(parents=True)
    env = lab_env(base, home)
    token = secrets.token_hex(24)
    log_path = base / "jupyterlab.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", "--port=0",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
             "--allow-root",  # CI runs as root
             "--LabApp.extension_manager=readonly",  # no PyPI queries from the extension manager
             "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: for state queries, not for gestures
             "--ServerApp.shutdown_no_activity_timeout=900",  # a lab orphaned by a crashed test ends itself
             "--MappingKernelManager.cull_idle_timeout=0"],
            cwd=root, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
    runtime = Path(env["JUPYTER_RUNTIME_DIR"])
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited ({proc.returncode}):\n{log_path.read_text()[-4000:]}")
        info_file = runtime / f"jpserver-{proc.pid}.json"
        if info_file.exists():
            try:
                info = json.loads(info_file.read_text())
            except ValueError:
                info = None  # being written
            if info:
                lab = Lab(url=f"http://127.0.0.1:{info['port']}", token=token, root=root, home=home, env=env,
                          proc=proc, log_path=log_path)
                try:
                    lab.api("GET", "/api/status")
                    return lab
                except (OSError, urllib.error.URLError):
                    pass
        time.sleep(0.1)
    stop_lab_process(proc)
    raise RuntimeError(f"jupyter lab did not answer within {START_TIMEOUT:.0f} s:\n{log_path.read_text()[-4000:]}")


def stop_lab(lab: Lab) -> None:
    """Shut the server down (it shuts its kernels down), stop the embedded engine the kernels
    started (`mycli server stop` with the same MYCLI_HOME), then kill whatever is left."""
    if lab.proc.poll() is None:
        try:
            lab.api("POST", "/api/shutdown")
            lab.proc.wait(20)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    subprocess.run([sys.executable, "-m", "mycli_magic.cli", "server", "stop"], env=lab.env,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)
    stop_lab_process(lab.proc)


def stop_lab_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A notebook with the python3 kernel named (so JupyterLab starts it without asking);
    cells starting with '#md ' are markdown."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for source in cells:
        if source.startswith("#md "):
            nb.cells.append(nbformat.v4.new_markdown_cell(source[4:]))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(source))
    nbformat.write(nb, path)
    return path


@dataclass
class Browser:
    """The Playwright objects of one Chromium with its own fresh user data dir."""

    playwright: object
    context: object
    console: list = field(default_factory=list)  # (page, type, text) of every console message

    def close(self) -> None:
        try:
            self.context.close()
        finally:
            self.playwright.stop()


def launch_browser(user_data_dir: Path) -> Browser:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        context = pw.chromium.launch_persistent_context(
            str(user_data_dir), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 960}, device_scale_factor=1,
        )
    except BaseException:
        pw.stop()
        raise
    browser = Browser(pw, context)
    context.on("console", lambda msg: browser.console.append((msg.type, msg.text)))
    return browser
