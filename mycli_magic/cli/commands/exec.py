"""`mycli exec [flags] COMMAND`: start a command remotely (or only show its script: --dry-run).

Settings come from flags > .mycli.yaml > git auto-detect (mycli_magic.project). Output:
- default: where each setting came from, then Execution Details and how to monitor it (stdout);
- --wait: the same on stderr, the remote output on stdout as it arrives, exit with its code;
- --json: only the API's answer on stdout (with --wait: the final execution, logs on stderr);
- --dry-run: exactly the script the orchestrator would run on stdout, a summary on stderr.
"""

from __future__ import annotations

import argparse
import sys

USAGE_NOTE = ("COMMAND is one shell command line (quote it), several words (joined as shell words), "
              "or '-' to read a script from stdin. Options go before COMMAND; after a quoted COMMAND a mycli "
              "option is refused, and -- before COMMAND hands everything after it to the command.")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument, add_raw_argument, int_in_range

    parser.usage = ("mycli exec [--repo URL] [--branch B] [--image I] [--env K=V]... [--timeout S] [--skip-git]\n"
                    "                  [--cpu VCPU] [--memory SIZE] [--upload PATH]... [--local-changes]\n"
                    "                  [--wait|-w [--download DIR]] [--json] [--dry-run] [--raw] [--profile P] COMMAND")
    parser.epilog = USAGE_NOTE
    parser.add_argument("--repo", metavar="URL", help="git repository to clone (overrides .mycli.yaml and git remote)")
    parser.add_argument("--branch", metavar="B", help="branch or tag to check out (overrides .mycli.yaml; default: main)")
    parser.add_argument("--image", metavar="I", help="container image (overrides .mycli.yaml; default: the engine's)")
    parser.add_argument("--env", metavar="K=V", action="append", default=[],
                        help="environment variable for the command; repeatable; merged over .mycli.yaml's env")
    parser.add_argument("--timeout", metavar="S", type=int_in_range(1, 86400, "seconds"), help="seconds before the command is stopped (default 1800)")
    parser.add_argument("--skip-git", action="store_true", help="run the command directly, without cloning a repository")
    parser.add_argument("--cpu", metavar="VCPU", help="vCPU for the run: 0.25, 0.5, 1, 2, 4, 8 or 16 (overrides .mycli.yaml)")
    parser.add_argument("--memory", metavar="SIZE", help="memory for the run: MiB (4096) or 4GiB / 4G; a pair AWS Fargate "
                        "runs with --cpu (overrides .mycli.yaml)")
    parser.add_argument("--upload", metavar="PATH", action="append", default=[],
                        help="a file or directory for the run, at $MYCLI_INPUTS/<its name>; repeatable; 100 MiB in all")
    parser.add_argument("--local-changes", action="store_true",
                        help="run your working tree: carry unpushed commits, uncommitted and untracked files into the clone")
    parser.add_argument("--download", metavar="DIR",
                        help="with --wait: when the run ends, save its artifacts ($MYCLI_OUTPUTS) into DIR, sha256 checked")
    parser.add_argument("-w", "--wait", action="store_true",
                        help="stream the output until the command ends and exit with its exit code (Ctrl-C detaches)")
    add_json_argument(parser)
    parser.add_argument("--dry-run", action="store_true",
                        help="print the script the orchestrator would run (stdout) and a summary (stderr); start nothing")
    add_raw_argument(parser)
    add_profile_argument(parser)
    parser.add_argument("words", nargs=argparse.REMAINDER, metavar="COMMAND", help="the command to run, or '-' for stdin")
    # what counts as a mycli option when it shows up after COMMAND (see command_text)
    parser.set_defaults(_options=tuple(name for action in parser._actions for name in action.option_strings))


def command_text(words: list[str], stdin=None, options: tuple[str, ...] = (), warn=None) -> str:
    """The command from argv words: one word verbatim, several joined as shell words, '-' = stdin.

    COMMAND takes the rest of the line, so `mycli exec pytest --timeout 5` gives pytest its own
    option. But a mycli option (one of `options`) after COMMAND never reaches the shell silently:
    after a quoted command line (`"echo hi" --wait`) it is refused, naming the two fixes; after
    plain words it goes to the command and `warn` says so. `--` before COMMAND (or before the
    option) hands everything after it to the command without a word.
    """
    import shlex

    from ...errors import UsageError

    explicit = bool(words) and words[0] == "--"
    if explicit:
        words = words[1:]
    if not words:
        raise UsageError("COMMAND is missing: mycli exec [options] \"your command\" (or '-' to read it from stdin)")
    if words == ["-"]:
        stdin = stdin or sys.stdin
        text = stdin.read()
        if not text.strip():
            raise UsageError("the script read from stdin is empty")
        return text
    if words[0].startswith("-") and words[0] != "-" and not explicit:
        raise UsageError(f"unknown option {words[0]!r} (options go before COMMAND; see: mycli exec --help)")
    stray = [] if explicit else _mycli_options(words[1:], options)
    if stray:
        named, them = " ".join(stray), "it" if len(stray) == 1 else "them"
        if shlex.quote(words[0]) != words[0]:  # one quoted command line, then mycli's own words
            raise UsageError(
                f"{named} after the quoted COMMAND {'is a mycli option' if len(stray) == 1 else 'are mycli options'} "
                f"and would reach the shell as part of the command: put {them} before COMMAND "
                f"(mycli exec {named} ... {shlex.quote(words[0])}), or put -- before COMMAND to hand {them} to the command")
        if warn:
            warn(f"→ {named} after COMMAND {'goes' if len(stray) == 1 else 'go'} to the command, not to mycli "
                 f"(mycli's options go before COMMAND; -- before COMMAND says this is meant)")
    return words[0] if len(words) == 1 else shlex.join(words)


def stdin_has_input(stdin=None) -> bool:
    """Whether something is piped or redirected into mycli (`echo hi | mycli exec cat`): a pipe,
    or a non-empty file. Not a terminal, and not /dev/null (scripts and CI), which hold nothing
    a user meant to send."""
    import os
    import stat

    try:
        mode = os.fstat((stdin or sys.stdin).fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode.st_mode) or stat.S_ISSOCK(mode.st_mode) or (stat.S_ISREG(mode.st_mode) and mode.st_size > 0)


def _mycli_options(words: list[str], options: tuple[str, ...]) -> list[str]:
    """The words that argparse would take for one of `options` (`--wait`, `--env=A=1`, `--wa`),
    up to a `--` (after which everything is the command's)."""
    found = []
    for word in words:
        if word == "--":
            break
        name = word.split("=", 1)[0]
        if not name.startswith("-") or name == "-":
            continue
        if name in options or (name.startswith("--") and len(name) > 2
                               and sum(o.startswith(name) for o in options if o.startswith("--")) == 1):
            found.append(word)
    return found


def run(args: argparse.Namespace) -> int:
    from ...project import parse_env_pairs, resolve_exec_settings
    from ..common import err

    from ...errors import UsageError
    from ...uploads import prepare

    command = command_text(args.words, options=getattr(args, "_options", ()), warn=err)
    if args.words != ["-"] and stdin_has_input():
        err("⚠ stdin is not sent to the command (mycli exec - reads the script from it; --upload FILE sends a file)")
    if args.download and not args.wait:
        raise UsageError("--download needs --wait (it saves the artifacts when the run ends); "
                         "for a run that is not waited for: mycli artifacts ID -o DIR")
    resolved = resolve_exec_settings(
        command, repo=args.repo, branch=args.branch, image=args.image, env=parse_env_pairs(args.env),
        timeout=args.timeout, skip_git=args.skip_git, cpu=args.cpu, memory=args.memory,
        local_changes=args.local_changes,
    )
    # everything local (paths, the size cap, git) is checked before anything is sent or started
    with prepare(args.upload, args.local_changes, resolved.payload, cwd=".") as files:
        return _run(args, resolved, files)


def _run(args: argparse.Namespace, resolved, files) -> int:
    from ...engine_notes import notice_text
    from ...safe_text import clean_log, escape_controls, escaped
    from ...uploads import send
    from ..common import err, open_client, print_json

    # user text (command, image, repo, paths) and the server's notice, shown as the other
    # commands show them: `echo \x1b[2J` must not clear the screen it is echoed to
    lines = [escape_controls(line) for line in resolved.lines[:-1] + files.lines + resolved.lines[-1:]]  # command last
    if args.dry_run:
        for line in lines:
            err(line)
        if files.inputs or files.changes:
            err("→ Dry run: uploads are checked but not sent, so the script below does not unpack them")
        client = open_client(args)
        answer = client.exec({**resolved.payload, "dry_run": True})
        if args.json:
            print_json(answer)
        else:
            sys.stdout.write(clean_log(str(answer.get("script", "")), args.raw))
            sys.stdout.flush()
        shown = escaped(answer)
        err(f"→ Dry run: the {shown.get('engine', '?')} engine (runtime: {shown.get('runtime', '?')}) "
            f"at {client.endpoint.url} would run the script above; nothing was started")
        return 0

    quiet = args.json
    say = err if (args.wait or args.json) else print
    if not quiet:
        for line in lines:
            say(line)
    client = open_client(args)
    if (files.inputs or files.changes) and not quiet:
        say("→ Uploading...")
    payload = {**resolved.payload, **send(client, files)}
    if not quiet:
        say("")
        say("→ Starting execution...")
    execution = client.exec(payload)
    if args.json and not args.wait:
        print_json(execution)
        return 0
    if not quiet:
        say("✓ Execution started")
        notice = notice_text(execution, "mycli server stop")
        if notice:
            say(f"⚠ {escape_controls(notice)}")
        for line in details_lines(execution, monitor=not args.wait):
            say(line)
    if not args.wait:
        return 0
    return _wait(client, execution, args.json, args.raw, args.download)


def details_lines(execution: dict, monitor: bool = True) -> list[str]:
    """The seed's Execution Details block; `monitor` adds the commands to follow it up."""
    from ...safe_text import escaped
    from ...summary import size_words

    execution = escaped(execution)
    ident = execution.get("execution_id", "")
    details = [
        "",
        "Execution Details:",
        f"  Execution ID: {ident}",
        f"  Task ARN:     {execution.get('task_arn', '')}",
        f"  Log Stream:   {execution.get('log_stream', '')}",
        f"  Engine:       {execution.get('engine', '?')} (runtime: {execution.get('runtime', '?')})",
    ]
    if size_words(execution):
        details.append(f"  Size:         {size_words(execution)}")
    if not monitor:
        return details
    return details + [
        "",
        "Monitor execution:",
        f"  mycli status {ident}",
        f"  mycli logs {ident}",
        f"  mycli logs -f {ident}  # Follow logs in real-time",
        f"  mycli stop {ident}",
    ]


def _wait(client, execution: dict, as_json: bool, raw: bool = False, download: str | None = None) -> int:
    from ..common import err, execution_ref, follow_to_end, print_json

    ident = execution.get("execution_id", "")
    ref = execution_ref(execution, ident)
    if not as_json:
        err("")
        err("→ Following the output (Ctrl-C detaches; the command keeps running)")
    code, final = follow_to_end(client, ref, ident, timestamps=False, out=sys.stderr if as_json else sys.stdout, raw=raw)
    if download and final is not None:
        _download(client, ref, download, code)
    elif download:  # detached: the run goes on, and its artifacts come when it ends
        import shlex

        from ...safe_text import escape_controls

        err(f"  Its artifacts, once it has ended: mycli artifacts {escape_controls(ident)} -o "
            f"{escape_controls(shlex.quote(download))}  (nothing was saved in {escape_controls(download)})")
    if as_json and final is not None:
        print_json(final)
    return code


def _download(client, ref: str, directory: str, code: int) -> None:
    """Save the run's artifacts; a failure is said in one line and, after a run that succeeded,
    is the error mycli exits with (after one that failed, the run's own exit code wins)."""
    from ...downloads import collection_failed, download, listing_when_complete, nothing_saved_words, saved_line
    from ...errors import MycliError
    from ..common import err

    try:
        listing = listing_when_complete(client, ref)
        if collection_failed(listing):
            raise MycliError(f"nothing to save in {directory}: {nothing_saved_words(listing)}")
        if not listing.get("artifacts"):
            err(f"→ No artifacts to save in {directory} ({nothing_saved_words(listing)})")
            return
        saved = download(client, listing, directory)
    except MycliError as exc:
        if code == 0:
            raise
        err(f"✗ Could not save the artifacts: {exc}")
        return
    for note in saved.notes():
        err(note)
    err(saved_line(listing, directory))
