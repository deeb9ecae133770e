"""The script lines that apply a run's local changes after its clone (see the client's
mycli_magic/local_changes.py for what is carried): fetch history back to the base commit when the
shallow clone lacks it, fetch the bundle's commits, check them out on the branch, apply the
working-tree patch. Any failure ends the run before the command, with a message saying why.

POSIX sh (dash, bash, busybox ash), shellcheck-clean, like the rest of the script. It runs inside
the fresh clone, while `"$@"` still holds the clone's credential options.
"""

from __future__ import annotations

from .shell import sh_quote

MAX_DEEPEN_ROUNDS = 6


def apply_lines(branch: str, fail_code: int, directory: str = "${MYCLI_LOCAL_CHANGES:-}") -> list[str]:
    """Lines that apply the local changes found in `directory` (a shell word: a variable
    expansion or a quoted path) and do nothing when it is empty."""
    fail = f"exit {fail_code}"
    return [
        f"mycli_lc={directory}",
        "if [ -n \"$mycli_lc\" ]; then",
        "  mycli_base=$(cat \"$mycli_lc/base\" 2>/dev/null)",
        "  case $mycli_base in",
        "    '' | *[!0-9a-f]*)",
        "      echo 'ERROR: the local changes are damaged (no base commit); run again with --local-changes.' >&2",
        f"      {fail} ;;",
        "  esac",
        "  mycli_depth=$(cat \"$mycli_lc/behind\" 2>/dev/null || echo 0)",
        "  case $mycli_depth in '' | *[!0-9]*) mycli_depth=0 ;; esac",
        "  mycli_depth=$((mycli_depth + 1))",
        "  mycli_round=0",
        "  while ! git cat-file -e \"$mycli_base^{commit}\" 2>/dev/null && [ \"$mycli_round\" -lt " + str(MAX_DEEPEN_ROUNDS) + " ]; do",
        "    [ \"$mycli_round\" -eq 0 ] && echo \"→ Fetching history back to the local changes' base commit...\"",
        "    git -c protocol.ext.allow=never -c credential.helper= \"$@\" fetch --quiet --deepen=\"$mycli_depth\" origin 2>/dev/null || break",
        "    mycli_depth=$((mycli_depth * 4))",
        "    mycli_round=$((mycli_round + 1))",
        "  done",
        "  if ! git cat-file -e \"$mycli_base^{commit}\" 2>/dev/null; then",
        "    git -c protocol.ext.allow=never -c credential.helper= \"$@\" fetch --quiet --unshallow origin 2>/dev/null",
        "  fi",
        "  if ! git cat-file -e \"$mycli_base^{commit}\" 2>/dev/null; then",
        f"    echo \"ERROR: the base commit of your local changes ($mycli_base) is not on origin/\"{sh_quote(branch)}' any more' >&2",
        "    echo '(was the branch force-pushed?). Fetch, rebase your work on it, and run again.' >&2",
        f"    {fail}",
        "  fi",
        "  if [ -f \"$mycli_lc/bundle\" ]; then",
        "    if ! git fetch --quiet \"$mycli_lc/bundle\" HEAD 2>&1 || ! git checkout --quiet -B "
        f"{sh_quote(branch)} FETCH_HEAD 2>&1; then",
        "      echo 'ERROR: the local commits could not be applied on the clone.' >&2",
        f"      {fail}",
        "    fi",
        "  fi",
        "  if [ -s \"$mycli_lc/patch\" ] && ! git apply --binary --whitespace=nowarn \"$mycli_lc/patch\" 2>&1; then",
        "    echo 'ERROR: the uncommitted changes could not be applied on the clone.' >&2",
        f"    {fail}",
        "  fi",
        "  printf '%s %s\\n' '✓ Local changes applied:' \"$(cat \"$mycli_lc/summary\" 2>/dev/null)\"",
        "fi",
    ]
