"""`mycli configure`: point mycli at an API endpoint and key, saved to $MYCLI_HOME/config.yaml (0600).

Interactive by default (asks for what the flags did not give, keeping current values on an empty
answer); non-interactive with --endpoint and --api-key. --stack-name reads the endpoint and
region from a deployed CloudFormation stack (the API key is never a stack output: it is asked
for). The key is checked against the endpoint before anything is saved (--no-verify skips that).
"""

from __future__ import annotations

import argparse
import sys

from ...errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...aws.configure_flow import add_arguments as add_configure_arguments

    add_configure_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ...aws import configure_flow

    draft = configure_flow.draft(args)
    api_key = _read_stdin_key() if args.api_key == "-" else args.api_key
    if not (draft.endpoint and api_key):
        _err(f"Configuring mycli{'' if draft.profile is None else f' profile {draft.profile!r}'} "
             f"(press Enter to keep the value in brackets)")
        draft.endpoint = draft.endpoint or _ask("API endpoint", draft.current.get("api_endpoint"))
        api_key = api_key or _ask("API key", draft.current.get("api_key"), secret=True)
        if not args.stack_name and not args.region:
            draft.region = _ask("AWS region (optional)", draft.current.get("region"), required=False)
    configure_flow.save(draft, api_key, say=print, warn=_err)
    return 0


# internals ---------------------------------------------------------------------------------


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ask(label: str, current: str | None, secret: bool = False, required: bool = True) -> str | None:
    from ...aws.configure_flow import mask

    shown = (mask(current) if secret else current) if current else ""
    prompt = f"{label}{f' [{shown}]' if shown else ''}: "
    if secret and sys.stdin.isatty():
        import getpass

        answer = getpass.getpass(prompt, stream=sys.stderr)
    else:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise UsageError(f"no answer for {label!r} (stdin ended); to configure without prompts pass --endpoint and --api-key")
        answer = line.rstrip("\r\n")
    answer = answer.strip() or (current or "")
    if required and not answer:
        raise UsageError(f"{label} is required; nothing was saved")
    return answer or None


def _read_stdin_key() -> str:
    key = sys.stdin.readline().strip()
    if not key:
        raise UsageError("--api-key - read nothing from stdin; nothing was saved")
    return key
