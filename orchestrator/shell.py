"""The POSIX shell script an execution runs: install git, authenticate, clone, run, report.

Pure string building. The script is the same for every engine (the local engine runs it with
/bin/sh, ECS passes it to the container's /bin/sh), runs under dash, bash and busybox ash, and
is clean under `shellcheck -s sh`. It holds no secret: git credentials arrive in the
MYCLI_GITHUB_TOKEN / MYCLI_GITLAB_TOKEN / MYCLI_SSH_PRIVATE_KEY environment variables, are read
by name (a git credential helper that prints the variable, never a token in a URL or argument),
and are unset before the user's command starts. The user's command runs in a child shell so
`exit N` or `set -e` inside it still reaches the exit report.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .exec_fields import display_repo
from .validation import ExecRequest

GITHUB_TOKEN_VAR = "MYCLI_GITHUB_TOKEN"
GITLAB_TOKEN_VAR = "MYCLI_GITLAB_TOKEN"
SSH_KEY_VAR = "MYCLI_SSH_PRIVATE_KEY"
CREDENTIAL_VARS = (GITHUB_TOKEN_VAR, GITLAB_TOKEN_VAR, SSH_KEY_VAR)
TIMEOUT_EXIT_CODE = 124
# The image's ID, when the engine resolved it before the script runs (docker, podman): the
# header's `→ Image: NAME (sha256:…)`
IMAGE_ID_VAR = "MYCLI_IMAGE_ID"

# The run could not start its command (clone failed, no git, a bad key; on a container runtime an
# image that is missing): outside 0-125 (a command's own codes), 126/127 (sh's "cannot execute",
# "not found"), 128+N (killed by signal N, up to 192) and 255 (`exit -1`), so it means only this.
NOT_STARTED_EXIT_CODE = 200
WATCHDOG_GRACE_SECONDS = 10
RULE = "━" * 20

# Published host keys, so an SSH clone from these hosts is not trust-on-first-use.
PINNED_KNOWN_HOSTS = (
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "gitlab.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAfuCHKVTjquxvt6CM6tdG4SLp1Btn/nOeHHE5UOzRdf",
)

_HTTPS_HOST_RE = re.compile(r"^https?://(?:[^/@]*@)?(([^/:]+)(?::[0-9]*)?)")


_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")


@dataclass(frozen=True)
class GitHosts:
    """Which hosts get which token (GitHub Enterprise or self-managed GitLab change these)."""

    github: str = "github.com"
    gitlab: str = "gitlab.com"


def timed_out_words(seconds: int, doing: str = "") -> str:
    """How a timeout is worded everywhere (log, stopped_reason, CLI, notebook): plain words with
    no parentheses of their own, since the CLI puts the reason in parentheses."""
    return f"Timed out after {seconds} s{doing}, the run's --timeout"


def sh_quote(value: str) -> str:
    """Quote `value` as one single-quoted sh word; safe for every byte but NUL."""
    return "'" + value.replace("'", "'\\''") + "'"


def credential_kind(repo: str, hosts: GitHosts = GitHosts()) -> str | None:
    """'github', 'gitlab', 'ssh' or None: which credential a clone of `repo` can use."""
    match = _HTTPS_HOST_RE.match(repo)
    if match and repo.startswith("http:") and match.group(2).lower() not in _LOOPBACK:
        return None  # a token over plain http could be read on the way; only a loopback test server gets one
    if match:
        # A configured host may carry a port (ghe.example.com:8443); one without a port matches any.
        names = {match.group(1).lower(), match.group(2).lower()}
        if hosts.github.lower() in names:
            return "github"
        if hosts.gitlab.lower() in names:
            return "gitlab"
        return None
    if repo.startswith("ssh://") or (not repo.startswith(("/", "file:", "git:")) and "@" in repo.split(":", 1)[0]):
        return "ssh"
    return None


def _origin(repo: str) -> str:
    """scheme://host[:port] of an http(s) repo URL (what git matches `credential.<url>.*` against;
    without the user, which such a key matches whatever it is)."""
    match = re.match(r"^(https?://)(?:[^/@]*@)?([^/]+)", repo)
    return (match.group(1) + match.group(2)).lower()


def build_script(
    request: ExecRequest,
    *,
    workdir: str,
    watchdog: bool = False,
    hosts: GitHosts = GitHosts(),
    notes: tuple[str, ...] = (),
) -> str:
    """The whole script for one execution.

    `workdir` is where the repo is cloned (`workdir/repo`) or, with skip_git, where the command
    runs. `watchdog` adds an in-script timeout for engines that cannot kill the process tree
    from outside (ECS has no task timeout); the local engine enforces the timeout itself.
    `notes` are extra header lines (e.g. which runtime ran the script). The execution ID comes
    from $MYCLI_EXECUTION_ID at run time, so a dry run shows exactly the script a run executes.
    """
    # A temporary directory (and the trap that removes it) only where something goes in it: the
    # clone's credentials and host keys, the watchdog's mark. A skip-git run on the host starts
    # no process before the command but the command's own shell.
    lines = _prologue(request, notes, needs_tmp=not request.skip_git or watchdog)
    if request.skip_git:
        lines.append("echo '→ Mode: direct command execution (git cloning skipped)'")
        if workdir != ".":
            lines.append(f"{{ mkdir -p {sh_quote(workdir)} && cd {sh_quote(workdir)}; }} || mycli_not_started 'no working directory'")
    else:
        lines += _git_section(request, workdir, credential_kind(request.repo or "", hosts))
    lines.append(f"unset {' '.join(CREDENTIAL_VARS)} MYCLI_GIT_USER MYCLI_GIT_PASSWORD GIT_SSH_COMMAND")
    if not request.skip_git:
        lines.append("rm -f \"$mycli_tmp/id_key\"")
    # The request's environment is set only now, so none of it (GIT_PROXY_COMMAND, LD_PRELOAD,
    # PATH...) can steer the clone while credentials are at hand.
    lines += command_lines(request, watchdog)
    return "\n".join(lines) + "\n"


def command_lines(request: ExecRequest, watchdog: bool) -> list[str]:
    """The end of every script: the request's env exported, the command run in a child shell
    (with the watchdog when asked), the result reported, the script's exit code the command's.
    Needs the prologue's `mycli_rule` (and `mycli_tmp` with the watchdog)."""
    lines = [f"export {key}={sh_quote(value)}" for key, value in sorted(request.env.items())]
    lines += [
        "printf '%s\\n' '' \"$mycli_rule\" 'Executing command...' \"$mycli_rule\" ''",
    ]
    lines += _run_section(request, watchdog)
    lines += [
        "echo",
        "printf '%s\\n' \"$mycli_rule\"",
        "if [ \"$mycli_rc\" -eq 0 ]; then",
        "  echo '✓ Command completed successfully'",
        "else",
        "  echo \"✗ Command failed with exit code: $mycli_rc\"",
        "fi",
        "printf '%s\\n' \"$mycli_rule\"",
        "exit \"$mycli_rc\"",
    ]
    return lines


def not_started_lines() -> list[str]:
    """`mycli_not_started REASON`: what every script (and each of AWS's containers) ends with when
    it cannot start the command — the reason between rules and NOT_STARTED_EXIT_CODE."""
    return [
        f"mycli_rule='{RULE}'",
        "mycli_not_started() {",
        "  printf '%s\\n' '' \"$mycli_rule\" \"✗ Could not start the command: $1 (exit code "
        f"{NOT_STARTED_EXIT_CODE})\" \"$mycli_rule\" >&2",
        f"  exit {NOT_STARTED_EXIT_CODE}",
        "}",
    ]


def temp_dir_lines() -> list[str]:
    """`$mycli_tmp`, a private directory removed on exit: mktemp's when the image has mktemp, else
    one made by hand (minimal images may lack it); `mycli_not_started` when neither works."""
    return [
        "mycli_tmp=$(mktemp -d 2>/dev/null || true)",
        "if [ -z \"$mycli_tmp\" ]; then",
        "  mycli_tmp=\"${TMPDIR:-/tmp}/mycli.$$\"",
        "  mkdir -m 700 \"$mycli_tmp\" || mycli_not_started 'no temporary directory'",
        "fi",
        "trap 'rm -rf \"$mycli_tmp\"' EXIT",
    ]


def signal_trap_lines() -> list[str]:
    """A signal ends the script through `exit` (so the EXIT trap cleans up) with the shell's
    usual 128+N code."""
    return ["trap 'exit 129' HUP", "trap 'exit 130' INT", "trap 'exit 143' TERM"]


def prologue_lines(request: ExecRequest, notes: tuple[str, ...] = (), needs_tmp: bool = True) -> list[str]:
    """The script's start (sh settings, `mycli_not_started`, the temporary directory and its
    trap, signal traps, the header): for engines that compose their own scripts."""
    return _prologue(request, notes, needs_tmp)


def clone_lines(request: ExecRequest, workdir: str, hosts: GitHosts = GitHosts()) -> list[str]:
    """Install git if needed, authenticate, clone `request.repo` into `workdir/repo` (applying
    the local changes found in $MYCLI_LOCAL_CHANGES when the request has some), and end in the
    clone with the credential options dropped."""
    return _git_section(request, workdir, credential_kind(request.repo or "", hosts))


def _prologue(request: ExecRequest, notes: tuple[str, ...], needs_tmp: bool = True) -> list[str]:
    title = "mycli Remote Execution" + (" (No Git)" if request.skip_git else "")
    header = list(notes)
    if request.env:
        header.append("→ Environment: " + ", ".join(sorted(request.env)))
    return [
        "#!/bin/sh",
        "# mycli execution script, generated by the orchestrator; every user value is single-quoted.",
        "set -u",
        # Everything before the user's command that fails ends here, with its own exit code.
        *not_started_lines(),
    ] + (temp_dir_lines() if needs_tmp else []) + signal_trap_lines() + [
        "printf '%s\\n' \"$mycli_rule\" " + sh_quote(title) + " \"$mycli_rule\"",
        "echo \"→ Execution: ${MYCLI_EXECUTION_ID:-unknown}\"",
    ] + ([f"printf '%s%s\\n' {sh_quote('→ Image: ' + request.image)} \"${{{IMAGE_ID_VAR}:+ (${IMAGE_ID_VAR})}}\""]
         if request.image else []) + (["printf '%s\\n' " + " ".join(sh_quote(h) for h in header)] if header else [])


def _git_section(request: ExecRequest, workdir: str, kind: str | None) -> list[str]:
    repo = request.repo or ""
    lines = [
        "if ! command -v git >/dev/null 2>&1; then",
        "  echo '→ Installing git...'",
        "  if command -v apk >/dev/null 2>&1; then",
        "    apk add --no-cache git openssh-client >/dev/null 2>&1",
        "  elif command -v apt-get >/dev/null 2>&1; then",
        "    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq git openssh-client; } >/dev/null 2>&1",
        "  elif command -v dnf >/dev/null 2>&1; then",
        "    dnf install -y -q git openssh-clients >/dev/null 2>&1",
        "  elif command -v yum >/dev/null 2>&1; then",
        "    yum install -y -q git openssh-clients >/dev/null 2>&1",
        "  fi",
        "  if ! command -v git >/dev/null 2>&1; then",
        "    echo 'ERROR: git is not installed and could not be installed (no apk, apt-get, dnf or yum that worked).' >&2",
        "    echo 'Use an image that has git, or run without cloning: --skip-git.' >&2",
        "    mycli_not_started 'git is missing'",
        "  fi",
        "fi",
        "GIT_TERMINAL_PROMPT=0",
        "export GIT_TERMINAL_PROMPT",
        "set --",
        # The local engine hands credentials over on stdin rather than in the environment, so
        # they never sit in this process's /proc/PID/environ where the command could read them.
        "# shellcheck disable=SC2034  # not every clone uses every credential",
        "if [ \"${MYCLI_CREDENTIALS_STDIN:-}\" = 1 ]; then",
        *[f"  IFS= read -r {var} || {var}=" for var in CREDENTIAL_VARS],
        "  exec </dev/null",
        "fi",
    ]
    if kind in ("github", "gitlab"):
        var = GITHUB_TOKEN_VAR if kind == "github" else GITLAB_TOKEN_VAR
        user = "x-access-token" if kind == "github" else "oauth2"
        helper = (
            f"credential.{_origin(repo)}.helper=!f() {{ test \"$1\" = get || return 0; "
            "printf 'username=%s\\npassword=%s\\n' \"$MYCLI_GIT_USER\" \"$MYCLI_GIT_PASSWORD\"; }; f"
        )  # scoped to the repo's scheme://HOST[:PORT]: a redirect or insteadOf to another host gets nothing
        lines += [
            f"if [ -n \"${{{var}:-}}\" ]; then",
            f"  echo '→ Configuring {'GitHub' if kind == 'github' else 'GitLab'} authentication...'",
            f"  MYCLI_GIT_USER={user}",
            f"  MYCLI_GIT_PASSWORD=\"${var}\"",
            "  export MYCLI_GIT_USER MYCLI_GIT_PASSWORD",
            "  # The helper reads the token from the environment when git asks; it is never an argument.",
            "  # shellcheck disable=SC2016",
            f"  set -- -c {sh_quote(helper)}",
            "fi",
        ]
    elif kind == "ssh":
        known = " ".join(sh_quote(h) for h in PINNED_KNOWN_HOSTS)
        lines += [
            f"printf '%s\\n' {known} > \"$mycli_tmp/known_hosts\"",
            "# GIT_SSH_COMMAND is read by a shell, so the quotes inside it are meant literally.",
            "# shellcheck disable=SC2089",
            "mycli_ssh=\"ssh -o BatchMode=yes -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile='$mycli_tmp/known_hosts'\"",
            f"if [ -n \"${{{SSH_KEY_VAR}:-}}\" ]; then",
            "  echo '→ Configuring SSH authentication...'",
            f"  if ! (umask 077 && printf '%s' \"${SSH_KEY_VAR}\" | base64 -d > \"$mycli_tmp/id_key\") 2>/dev/null; then",
            "    echo 'ERROR: the SSH private key is not valid base64.' >&2",
            "    mycli_not_started 'the SSH key is not valid'",
            "  fi",
            "  mycli_ssh=\"$mycli_ssh -o IdentitiesOnly=yes -i '$mycli_tmp/id_key'\"",
            "fi",
            "GIT_SSH_COMMAND=$mycli_ssh",
            "# shellcheck disable=SC2090",
            "export GIT_SSH_COMMAND",
        ]
    target = f"{workdir.rstrip('/')}/repo"
    lines += [
        "printf '%s\\n' " + " ".join(
            sh_quote(s) for s in (f"→ Repository: {display_repo(repo)}", f"→ Branch: {request.branch}", "→ Cloning repository...")
        ),
        f"mkdir -p {sh_quote(workdir)} || mycli_not_started 'no working directory'",
        "if ! git -c protocol.ext.allow=never -c credential.helper= \"$@\" clone --quiet --no-local --depth 1 "
        f"--branch {sh_quote(request.branch)} -- {sh_quote(repo)} {sh_quote(target)}; then",
        "  echo 'ERROR: Failed to clone repository. Check that the URL is right, the branch exists,' >&2",
        "  echo 'and git credentials are configured on the server for a private repository.' >&2",
        "  mycli_not_started 'the repository could not be cloned'",
        "fi",
        f"cd {sh_quote(target)} || mycli_not_started 'the clone has no working tree'",
        "echo '✓ Repository cloned'",
    ]
    if request.local_changes:  # inside the clone while "$@" still holds its credential options
        lines += local_changes_lines(request.branch)
    return lines + ["set --"]


def local_changes_lines(branch: str, directory: str = "\"${MYCLI_LOCAL_CHANGES:-}\"") -> list[str]:
    """The lines that apply a run's local changes (extracted into `directory`, a shell word)
    in the fresh clone; a failure ends the run before the command with NOT_STARTED_EXIT_CODE."""
    from .local_changes_script import apply_lines  # it imports sh_quote from here

    return apply_lines(branch, NOT_STARTED_EXIT_CODE, directory)


def _run_section(request: ExecRequest, watchdog: bool) -> list[str]:
    run = f"/bin/sh -c {sh_quote(request.command)} mycli"
    if not watchdog:
        return [f"{run}", "mycli_rc=$?"]
    seconds = request.timeout_seconds
    return [
        f"{run} &",
        "mycli_pid=$!",
        "(",
        f"  sleep {seconds}",
        "  : > \"$mycli_tmp/timed_out\"",
        "  kill -TERM \"$mycli_pid\" 2>/dev/null",
        f"  sleep {WATCHDOG_GRACE_SECONDS}",
        "  kill -KILL \"$mycli_pid\" 2>/dev/null",
        ") &",
        "mycli_dog=$!",
        "wait \"$mycli_pid\"",
        "mycli_rc=$?",
        "kill \"$mycli_dog\" 2>/dev/null",
        "if [ -e \"$mycli_tmp/timed_out\" ]; then",
        f"  mycli_rc={TIMEOUT_EXIT_CODE}",
        f"  echo {sh_quote('✗ ' + timed_out_words(seconds))}",
        "fi",
    ]
