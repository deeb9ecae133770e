"""`$var` / `{expr}` expansion of the magics' lines, as IPython does it, minus its all-or-nothing.

IPython expands a magic's line with one formatter call: one name it cannot resolve (`$HOME` when
HOME is no Python variable) makes it give up on the whole line, so `--env N={n} --env R=$HOME`
would silently send a literal `{n}`. The magics opt out of IPython's expansion and call
`expand_line`: IPython's own result when it succeeds; otherwise every field that resolves is
expanded, the rest is kept as written and named, so the magic can say so in one line.
"""

from __future__ import annotations

import re
from string import Formatter
from typing import Mapping

# IPython.utils.text.DollarFormatter's pattern: `$name` or `$a.b` outside single quotes; `$$` is a `$`.
_DOLLAR_RE = re.compile(r"(.*?)\$(\$?[\w\.]+)(?=([^']*'[^']*')*[^']*$)")


def expand_line(line: str, namespace: Mapping[str, object]) -> tuple[str, list[str]]:
    """(the expanded line, the fields left as written because they did not resolve)."""
    from IPython.utils.text import DollarFormatter

    formatter = DollarFormatter()
    try:
        return formatter.vformat(line, args=[], kwargs=dict(namespace)), []
    except Exception:
        pass  # IPython would now send the line unexpanded; expand what can be, field by field
    try:
        pieces = list(_fields(line))
    except ValueError:  # an unbalanced { or }: nothing can be told apart
        return line, ["the whole line (an unpaired { or })"]
    out, kept = [], []
    for literal, expression, conversion, written in pieces:
        out.append(literal)
        if expression is None:
            continue
        try:
            value = formatter.convert_field(eval(expression, dict(namespace)), conversion)  # as FullEvalFormatter does
            out.append(formatter.format_field(value, ""))
        except Exception:
            out.append(written)
            kept.append(written)
    return "".join(out), kept


def _fields(line: str):
    """(literal text, field expression or None, conversion, the field as written), like
    DollarFormatter.parse but knowing how each field was written, so one that fails can be put
    back as it was."""
    for literal, field, spec, conversion in Formatter().parse(line):
        position, text = 0, ""
        for match in _DOLLAR_RE.finditer(literal):
            before, name = match.group(1, 2)
            if name.startswith("$"):  # $$name → $name, not a field
                text += before + name
            else:
                yield text + before, name, None, f"${name}"
                text = ""
            position = match.end()
        rest = text + literal[position:]
        if field is None:
            yield rest, None, None, ""
            continue
        written = "{" + field + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
        yield rest, f"{field}:{spec}" if spec else field, conversion, written  # the spec is a slice there
