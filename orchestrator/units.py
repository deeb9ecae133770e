"""Bytes in words: the one size formatter and the one MiB of mycli.

Every engine, front and script says a size the same way (`0 bytes`, `1,023 bytes`, `1.0 KiB`,
`1.5 GiB`): the embedded engine's log, the AWS publish container's shell (ecs_scripts.py writes the
same words in awk; tests/engines/test_size_words.py holds the two together) and the client,
which imports this module (the import-linter contracts let the client use the core).
"""

from __future__ import annotations

MIB = 1 << 20
NO_CAP = 1 << 62  # what a cap of 0 (off) becomes: more than any disk holds


def human_size(size: float) -> str:
    """`1 byte`, `1,023 bytes`, `3.4 MiB`: a byte count in binary units, one decimal past bytes."""
    if size < 1024:
        return f"{int(size):,} byte{'s' if size != 1 else ''}"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def cap_bytes(mb: float) -> int:
    """A MYCLI_MAX_*_MB setting in bytes, as every engine reads it: 0 turns the cap off."""
    return int(mb * MIB) or NO_CAP


def files_and_size(count: int, size: int) -> str:
    """`3 files, 1.2 MiB`: a set of files in one phrase, the same in the log and every front."""
    return f"{count} file{'s' if count != 1 else ''}, {human_size(size)}"
