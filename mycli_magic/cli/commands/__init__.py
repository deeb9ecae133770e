"""One module per `mycli` command, each with `add_arguments(parser)` and `run(args) -> int`.

`mycli_magic.cli.main` imports only the module of the command being run, so `mycli status`
does not pay for `init`'s imports. A command module reads as "parse, call, print".
"""
