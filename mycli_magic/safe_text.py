"""What the server says, made safe to print on a terminal.

A hostile or compromised endpoint could put escape sequences in what mycli prints and clear the
screen, retitle the window, or write the clipboard (OSC 52). So:
- metadata (IDs, statuses, reasons, images, commands, error messages) is shown with every
  control character escaped, visibly: ESC becomes `\\x1b`, a newline `\\n`;
- log content keeps its colours (SGR: `ESC [ … m`), tabs and carriage returns (progress bars),
  and loses every other escape sequence and control character — unless the user asks for it
  raw (`--raw`).
Pure functions, used by every front (CLI, the notebook's text view, the shared summaries).
"""

from __future__ import annotations

import re

# C0 and C1 controls, DEL, and the invisible characters that reorder or split what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI … final byte (SGR is one of these)
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC … BEL or ST: titles, links, OSC 52
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC … ST
    r"|\x1b[ -/]*[0-~]"  # the other escapes: ESC c (reset), ESC 7, ESC ( B …
    r"|\x1b"  # a lone ESC
)
_SGR = re.compile(r"\x1b\[[0-9;:]*m\Z")
_LOG_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f-\x9f]")  # all but \t \n \r and ESC
_ANY_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape_controls(text: object) -> str:
    """`text` as a string with every control character written out (`\\x1b`, `\\n`, `\\u202e`)."""
    text = "" if text is None else str(text)
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(_escaped, text)


def escaped(data: object) -> object:
    """`data` (the API's JSON: dicts, lists, strings) with every string escaped, for display."""
    if isinstance(data, str):
        return escape_controls(data)
    if isinstance(data, dict):
        return {key: escaped(value) for key, value in data.items()}
    if isinstance(data, list):
        return [escaped(item) for item in data]
    return data


def clean_log(text: str, raw: bool = False) -> str:
    """Log output fit for a terminal: colours kept, every other escape sequence and control
    character (but tab, newline and carriage return) dropped. `raw` returns it untouched."""
    if raw or not _ANY_CONTROL.search(text):
        return text
    text = _ESCAPE_SEQUENCE.sub(_keep_sgr, text)
    return _LOG_CONTROL.sub("", text)


def _keep_sgr(match: re.Match) -> str:
    return match.group() if _SGR.match(match.group()) else ""


def _escaped(match: re.Match) -> str:
    char = match.group()
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
