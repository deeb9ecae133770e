"""`mycli init [--region R] [--stack-name mycli] [--force]`: deploy the AWS stack, save the
endpoint and a new API key, show the key once.

Git credentials come from prompts (hidden input), or with --force from files named by flags or
the GITHUB_TOKEN / GITLAB_TOKEN / SSH_PRIVATE_KEY environment variables. Never from a flag's
value: a token on the command line is visible to every user of the machine.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
from pathlib import Path

from ..errors import UsageError

RULE = "━" * 20


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--region", help="AWS region (default: your AWS configuration's, else us-east-2)")
    parser.add_argument("--stack-name", default="mycli", help="CloudFormation stack name (default: mycli)")
    parser.add_argument("--force", action="store_true",
                        help="no questions: skip the confirmation, take git credentials from files/environment, "
                             "and update the stack (with a new API key) if it exists")
    parser.add_argument("--profile", help="save the endpoint and key in this profile (default: the default profile)")
    parser.add_argument("--capacity", choices=["fargate-spot", "fargate"], default="fargate-spot",
                        help="run tasks on Fargate Spot (default, ~70%% cheaper, may be interrupted) or on-demand Fargate")
    parser.add_argument("--default-image", default="ubuntu:22.04", help="image used when a command names none (default: ubuntu:22.04)")
    parser.add_argument("--github-host", default="github.com", help="host that gets the GitHub token (GitHub Enterprise: yours)")
    parser.add_argument("--gitlab-host", default="gitlab.com", help="host that gets the GitLab token (self-managed GitLab: yours)")
    parser.add_argument("--github-token-file", type=Path, help="file holding a GitHub token (else $GITHUB_TOKEN)")
    parser.add_argument("--gitlab-token-file", type=Path, help="file holding a GitLab token (else $GITLAB_TOKEN)")
    parser.add_argument("--ssh-key-file", type=Path, help="SSH private key file for any git host (else $SSH_PRIVATE_KEY, base64)")


def run(args: argparse.Namespace) -> int:
    from .. import aws_deploy

    region = aws_deploy.resolve_region(args.region)
    say = _printer()
    say(f"🔑 Initializing mycli infrastructure...\n   Stack name: {args.stack_name}\n   Region: {region}\n")
    if args.force:
        credentials = credentials_from_files(args)
    else:
        _confirm(args.stack_name, region)
        credentials = _ask_credentials()
    result = aws_deploy.init_stack(region, args.stack_name, args.force, credentials, say,
                                   capacity=args.capacity, default_image=args.default_image, profile=args.profile,
                                   github_host=args.github_host, gitlab_host=args.gitlab_host)
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

    from ..aws_deploy import GitCredentials

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
        return GitCredentials(ssh_private_key=_read_key(path)).validate()
    return GitCredentials()


def credentials_from_files(args: argparse.Namespace):
    from ..aws_deploy import GitCredentials

    env = GitCredentials.from_env(os.environ)
    return GitCredentials(
        github_token=_read_text(args.github_token_file) if args.github_token_file else env.github_token,
        gitlab_token=_read_text(args.gitlab_token_file) if args.gitlab_token_file else env.gitlab_token,
        ssh_private_key=_read_key(args.ssh_key_file) if args.ssh_key_file else env.ssh_private_key,
    ).validate()


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def _read_key(path: Path) -> str:
    try:
        return base64.b64encode(path.read_bytes()).decode()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
