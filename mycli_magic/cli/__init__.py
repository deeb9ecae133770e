"""The terminal front: `mycli COMMAND ...`.

`main.py` parses the arguments and is the one place where errors become a single line on stderr
and an exit code; `common.py` holds what several commands share (connecting, following a log,
the words used to show an execution); `commands/` has one module per command.

May import: the shared client modules (`mycli_magic.client`, `config`, `project`, `follow`,
`summary`, `embedded`, `errors`, `gitdetect`), the deployment flows in `mycli_magic.aws`, and
`orchestrator` (the local server it runs). Never `mycli_magic.notebook`.
"""
