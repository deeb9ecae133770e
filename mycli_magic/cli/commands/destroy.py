"""`mycli destroy [--force] [--keep-config] [--stack-name mycli] [--region R]`: remove the stack,
every mycli task definition of it, and (unless --keep-config) its saved configuration."""

from __future__ import annotations

import argparse
import sys

from ...errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...aws.destroy import add_destroy_arguments

    add_destroy_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ...aws.deploy import target_stack
    from ...aws.destroy import destroy_stack

    stack, region = target_stack(args.stack_name, args.region)
    if not args.force:
        print("⚠  This will delete all mycli infrastructure in your AWS account.")
        print(f"   Stack: {stack}\n   Region: {region}\n")
        if not sys.stdin.isatty():
            raise UsageError("mycli destroy needs a terminal to confirm; use --force")
        if input("Continue? [y/N]: ").strip().lower() not in ("y", "yes"):
            raise UsageError("cancelled: nothing was deleted")
    destroy_stack(region, stack, args.keep_config, lambda line: print(line, flush=True))
    print("\n✅ Destruction complete!\n   All AWS resources of the stack have been removed.")
    return 0
