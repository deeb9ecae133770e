"""`mycli init [--region R] [--stack-name mycli] [--force]`: deploy the AWS stack, save the
endpoint and a new API key, show the key once.

Git credentials come from prompts (hidden input), or with --force from files named by flags or
the GITHUB_TOKEN / GITLAB_TOKEN / SSH_PRIVATE_KEY environment variables. Never from a flag's
value: a token on the command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ...aws.git_credentials import credentials_from_files
from ...errors import UsageError

RULE = "━" * 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...aws.deploy import add_init_arguments

    add_init_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ...aws import deploy as aws_deploy

    region = aws_deploy.resolve_region(args.region)
    say = _printer()
    say(f"🔑 Initializing mycli infrastructure...\n   Stack name: {args.stack_name}\n   Region: {region}\n")
    if args.force:
        credentials = credentials_from_files(args)
    else:
        _confirm(args.stack_name, region)
        credentials = _ask_credentials()
    result = aws_deploy.init_from_args(args, credentials, say)
    auth = lambda name: "✓ Configured" if name in result.git_auth else "not configured"  # noqa: E731
    say("\n✅ Setup complete!")
    say(RULE)
    say(f"Configuration saved to {result.config_path}" + (f" (profile {args.profile})" if args.profile else ""))
    say(f"  API Endpoint: {result.api_endpoint}")
    say(f"  Region:       {result.region}")
    say(f"  GitHub Auth:  {auth('GitHub')}\n  GitLab Auth:  {auth('GitLab')}\n  SSH Auth:     {auth('SSH')}")
    say(RULE)
    say(f"\n🔑 Your API key: {result.api_key}\n   (shown once; also saved to the config file, mode 0600)")
    say('\nNext steps:\n  1. Test it: mycli exec --skip-git --image=alpine:latest "echo hello"')
    return 0


def _printer():
    def say(line: str) -> None:
        print(line, flush=True)
    return say


def _confirm(stack: str, region: str) -> None:
    print("⚠  This will create AWS infrastructure in your account:")
    print(f"   Stack Name: {stack}\n   Region:     {region}\n")
    print("Resources to be created:\n   - VPC with subnets and internet gateway\n   - ECS Fargate cluster and task definitions")
    print("   - Lambda function and API Gateway\n   - DynamoDB table of executions, Secrets Manager secret for git credentials")
    print("   - CloudWatch log groups\n   - IAM roles and security groups\n")
    if _input("Type 'yes' to confirm: ").strip().lower() != "yes":
        raise UsageError("cancelled: nothing was created")


def _input(prompt: str) -> str:
    if not sys.stdin.isatty():
        raise UsageError("mycli init needs a terminal to ask its questions; use --force (credentials from files/environment)")
    return input(prompt)


def _ask_credentials():
    import getpass

    from ...aws.git_credentials import GitCredentials, read_key

    print("→ Git Credential Configuration")
    print("  For private repositories, you can configure Git authentication.")
    print("  This is optional - you can skip this and only use public repos.\n")
    if _input("Configure Git credentials? [y/N]: ").strip().lower() not in ("y", "yes"):
        return GitCredentials()
    print("\nChoose authentication method:\n  1) GitHub Personal Access Token (recommended)\n  2) GitLab Personal Access Token")
    print("  3) SSH Private Key (for any Git provider)\n  4) Skip\n")
    choice = _input("Selection [1-4]: ").strip()
    if choice == "1":
        token = getpass.getpass("Enter GitHub token (ghp_...): ").strip()
        print("  ✓ GitHub token configured")
        return GitCredentials(github_token=token).validate()
    if choice == "2":
        token = getpass.getpass("Enter GitLab token (glpat-...): ").strip()
        print("  ✓ GitLab token configured")
        return GitCredentials(gitlab_token=token).validate()
    if choice == "3":
        path = Path(_input("Path to the SSH private key [~/.ssh/id_ed25519]: ").strip() or "~/.ssh/id_ed25519").expanduser()
        print("  ✓ SSH key configured")
        return GitCredentials(ssh_private_key=read_key(path)).validate()
    return GitCredentials()
