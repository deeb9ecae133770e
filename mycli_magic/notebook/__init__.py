"""The notebook front: `%%mycli` and `%mycli ...` in IPython and Jupyter.

`magics.py` registers the magics and their traitlets settings (`%config MycliMagics.…`);
`line_commands.py` implements the `%mycli` subcommands; `handle.py` is the `Execution` handle a
cell returns (`--out h`) and `ExecutionFailed`; `display.py` chooses how a run is shown — the
widget `panel.py` (ipywidgets) or `text_view.py` — and `view_settings.py` is what both views share.

May import: IPython, ipywidgets (only when a panel is shown), the shared client modules and the
deployment flows in `mycli_magic.aws`. Never `mycli_magic.cli`.
"""
