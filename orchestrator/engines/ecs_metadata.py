"""What publish asks ECS about the executor, in POSIX sh: the task metadata endpoint v4
(`$ECS_CONTAINER_METADATA_URI_V4/task`, given to every container on Fargate platform 1.4+, no
permission needed). Pure string building; ecs_scripts.py puts it in publish's script.
"""

from __future__ import annotations

WATCH_SECONDS = 3  # how often publish asks whether the executor has stopped (MYCLI_PUBLISH_WATCH_SECONDS)


def executor_state_lines(container: str = "executor") -> list[str]:
    """`mycli_executor_state`: the executor's `KnownStatus` and `ExitCode` (absent until it has
    exited) as ECS's agent knows them, from the task metadata endpoint v4 (`$ECS_CONTAINER_METADATA_URI_V4/task`,
    on Fargate since platform 1.4), e.g. `STOPPED 137`; fails when there is no endpoint or no
    answer. It is how publish learns the executor ended without its EXIT trap's mark (its shell
    SIGKILLed, the container killed, its image unable to start it, never started). The JSON is
    read by awk, token by token: keys at the depth of a container object only, so a label or a
    network that holds the same words cannot mislead it."""
    return [
        "mycli_executor_state() {",
        "  [ -n \"${ECS_CONTAINER_METADATA_URI_V4:-}\" ] || return 1",
        "  curl -sS --fail --max-time 5 \"$ECS_CONTAINER_METADATA_URI_V4/task\" 2>/dev/null | awk -v want=" + container + " '",
        "    { s = s $0 \" \" }",
        "    END {",
        "      n = length(s); d = 0; v = 0; k = \"\"; found = 0",
        "      for (i = 1; i <= n; i++) {",
        "        c = substr(s, i, 1)",
        "        if (c == \"\\\"\") {",
        "          t = \"\"",
        "          for (i++; i <= n; i++) { c = substr(s, i, 1); if (c == \"\\\\\") { i++; t = t substr(s, i, 1) } else if (c == \"\\\"\") break; else t = t c }",
        "          if (!v) { k = t; continue }",
        "          v = 0",
        "          if (d == 2 && k == \"Name\") name = t",
        "          if (d == 2 && k == \"KnownStatus\") st = t",
        "        } else if (c == \":\") v = 1",
        "        else if (c == \"{\") { d++; v = 0; if (d == 2) { name = \"\"; st = \"\"; ec = \"\" } }",
        "        else if (c == \"}\") { if (d == 2 && name == want && st != \"\") { print st (ec == \"\" ? \"\" : \" \" ec); found = 1 } d--; v = 0 }",
        "        else if (c == \",\" || c == \"[\") v = 0",
        "        else if (v && c ~ /[-0-9]/) {",
        "          t = c; while (i < n && substr(s, i + 1, 1) ~ /[0-9]/) { i++; t = t substr(s, i, 1) }",
        "          if (d == 2 && k == \"ExitCode\") ec = t",
        "          v = 0",
        "        }",
        "      }",
        "      exit !found",
        "    }'",
        "}",
    ]
