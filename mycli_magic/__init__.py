"""mycli's client: the terminal CLI, the notebook magics and AWS deployment, around what they share.

    cli/        the `mycli` command (a front)
    notebook/   `%%mycli` / `%mycli`, the execution handle, the widget panel (a front)
    aws/        deploying the stack and connecting to it (used by both fronts)
    client.py  config.py  project.py  size.py  gitdetect.py  follow.py  summary.py  embedded.py  errors.py
    safe_text.py
                the shared client: the API client, global and project settings (a run's size), git
                detection, following a log, run summaries, starting the embedded engine, typed
                errors, what the server says made safe to print on a terminal

Arrows point inward: fronts → aws → shared modules → `orchestrator`; the shared modules never
import a front or `aws`, and the fronts never import each other (tests/test_layout.py checks it
with import-linter).

`%load_ext mycli_magic` must stay cheap: nothing here imports IPython widgets or boto3 until
a magic actually needs them.
"""

__version__ = "0.1.0"


def load_ipython_extension(ipython) -> None:
    from .notebook.magics import load_ipython_extension as _load

    _load(ipython)
