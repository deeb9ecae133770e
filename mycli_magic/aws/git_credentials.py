"""The git credentials the containers get (through Secrets Manager): their checks, and how
`mycli init --force` and `%mycli init` read them without asking: from the files the flags name,
else from $GITHUB_TOKEN / $GITLAB_TOKEN / $SSH_PRIVATE_KEY. Never from a flag's value: a token
on a command line (or in a notebook cell) is visible to others."""

from __future__ import annotations

import argparse
import base64
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ..errors import UsageError

_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.-]*$")
_BASE64_RE = re.compile(r"^[A-Za-z0-9+/=]*$")
MAX_PARAMETER_BYTES = 4096


@dataclass(frozen=True)
class GitCredentials:
    """Credentials the containers get; all optional."""

    github_token: str = ""
    gitlab_token: str = ""
    ssh_private_key: str = ""  # base64 of the key file

    def validate(self) -> "GitCredentials":
        for name, value in (("GitHub token", self.github_token), ("GitLab token", self.gitlab_token)):
            if not _TOKEN_RE.match(value):
                raise UsageError(f"the {name} may hold only letters, digits, '_', '.' and '-'")
        if not _BASE64_RE.match(self.ssh_private_key):
            raise UsageError("the SSH private key must be base64 (base64 -w0 ~/.ssh/id_ed25519)")
        if len(self.ssh_private_key) > MAX_PARAMETER_BYTES:
            raise UsageError("the SSH private key is over CloudFormation's 4 KB parameter limit; use an ed25519 key")
        return self

    @property
    def configured(self) -> list[str]:
        names = (("GitHub", self.github_token), ("GitLab", self.gitlab_token), ("SSH", self.ssh_private_key))
        return [name for name, value in names if value]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "GitCredentials":
        return cls(environ.get("GITHUB_TOKEN", ""), environ.get("GITLAB_TOKEN", ""), environ.get("SSH_PRIVATE_KEY", ""))


def credentials_from_files(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> GitCredentials:
    """From init's --github-token-file / --gitlab-token-file / --ssh-key-file, else the environment."""
    env = GitCredentials.from_env(environ)
    return GitCredentials(
        github_token=read_text(args.github_token_file) if args.github_token_file else env.github_token,
        gitlab_token=read_text(args.gitlab_token_file) if args.gitlab_token_file else env.gitlab_token,
        ssh_private_key=read_key(args.ssh_key_file) if args.ssh_key_file else env.ssh_private_key,
    ).validate()


def read_text(path: Path) -> str:
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None


def read_key(path: Path) -> str:
    """The key file, base64-encoded (what the SSHPrivateKey parameter holds)."""
    try:
        return base64.b64encode(Path(path).read_bytes()).decode()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
