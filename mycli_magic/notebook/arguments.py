"""The `%%mycli` cell magic's options, declared once (as IPython's `%%script` does) and parsed
like a POSIX shell line: a mistake, or a word that is no option, is one UsageError.
"""

from __future__ import annotations

from IPython.core.error import UsageError
from IPython.core.magic_arguments import argument

from ..arg_types import int_in_range

FLAG_NAMES = {"repo": "--repo", "skip_git": "--skip-git", "branch": "--branch", "image": "--image"}


def exec_arguments(func):
    """`mycli exec`'s flags plus the notebook's own, stacked once (as IPython's %%script does)."""
    decorators = [
        argument("--repo", metavar="URL", help="git repository to clone (overrides .mycli.yaml and the git remote)"),
        argument("--branch", metavar="B", help="branch or tag to check out (overrides .mycli.yaml; default: main)"),
        argument("--image", metavar="I", help="container image (overrides .mycli.yaml and MycliMagics.image)"),
        argument("--env", metavar="K=V", action="append", default=[],
                 help="environment variable for the command; repeatable; merged over .mycli.yaml's env"),
        argument("--timeout", metavar="S", type=int_in_range(1, 86400, "seconds"), help="seconds before the remote command is stopped (default 1800)"),
        argument("--skip-git", action="store_true", help="run the command directly, without cloning a repository"),
        argument("--cpu", metavar="VCPU", help="vCPU: 0.25, 0.5, 1, 2, 4, 8 or 16 (overrides .mycli.yaml and MycliMagics.cpu)"),
        argument("--memory", metavar="SIZE", help="memory: MiB (4096) or 4GiB / 4G, a pair AWS Fargate runs with the cpu "
                 "(overrides .mycli.yaml and MycliMagics.memory)"),
        argument("--profile", metavar="P", help="profile from $MYCLI_HOME/config.yaml (default: MycliMagics.profile)"),
        argument("--bg", action="store_true",
                 help="detach: return at once while the run goes on (the panel keeps updating); never raises"),
        argument("--out", metavar="VAR", help="store an execution handle in VAR (.logs, .wait(), .stop(), .refresh())"),
        argument("--no-raise", action="store_true", help="do not raise when the remote command exits non-zero"),
        argument("--upload", metavar="PATH", action="append", default=[],
                 help="a file or directory for the run, at $MYCLI_INPUTS/<its name>; repeatable; 100 MiB in all"),
        argument("--local-changes", action="store_true",
                 help="run your working tree: carry unpushed commits, uncommitted and untracked files into the clone"),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def parse_options(magic_func, line: str):
    """Split like a POSIX shell (IPython's own splitter keeps the quotes: --env "A=b c" would
    arrive as '"A=b' 'c"'), then parse; a mistake is a UsageError naming the option, and so is
    a word that is no option (a command written on this line instead of in the cell)."""
    import shlex

    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%mycli: {exc} in the options line (check the quotes)") from None
    try:
        args, extras = magic_func.parser.parse_known_args(argv)
    except UsageError as exc:
        raise UsageError(f"%%mycli: {exc} (see: %%mycli?)") from None
    words = [word for word in extras if word != "--"]
    unknown = [word for word in words if word.startswith("-")]
    if unknown:
        raise UsageError(f"%%mycli: unrecognized arguments: {' '.join(unknown)} (see: %%mycli?)")
    if words:  # as `mycli exec "echo hi" --wait`: nothing on this line may reach the shell
        raise UsageError(f"%%mycli: {' '.join(shlex.quote(w) for w in words)} on the %%mycli line "
                         f"{'is not an option' if len(words) == 1 else 'are not options'}: the command goes in the "
                         "cell, on the lines below %%mycli; this line takes only options (see: %%mycli?)")
    return args
