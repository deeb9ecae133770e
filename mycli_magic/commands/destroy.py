"""`mycli destroy [--force] [--keep-config] [--stack-name mycli] [--region R]`: remove the stack,
every mycli task definition of it, and (unless --keep-config) its saved configuration."""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", default=None, help="stack to delete (default: the configured one, else mycli)")
    parser.add_argument("--region", help="AWS region (default: the configured one, else your AWS configuration's)")
    parser.add_argument("--force", action="store_true", help="skip the confirmation prompt")
    parser.add_argument("--keep-config", action="store_true", help="keep the local configuration of this stack")


def run(args: argparse.Namespace) -> int:
    from .. import aws_deploy, config

    saved = config.profile_values(None)
    stack = args.stack_name or saved.get("stack_name") or aws_deploy.DEFAULT_STACK
    region = aws_deploy.resolve_region(args.region or (saved.get("region") if saved.get("stack_name", stack) == stack else None))
    if not args.force:
        print("⚠  This will delete all mycli infrastructure in your AWS account.")
        print(f"   Stack: {stack}\n   Region: {region}\n")
        if not sys.stdin.isatty():
            raise UsageError("mycli destroy needs a terminal to confirm; use --force")
        if input("Continue? [y/N]: ").strip().lower() not in ("y", "yes"):
            raise UsageError("cancelled: nothing was deleted")
    aws_deploy.destroy_stack(region, stack, args.keep_config, lambda line: print(line, flush=True))
    print("\n✅ Destruction complete!\n   All AWS resources of the stack have been removed.")
    return 0
