"""The engine reads publish's manifest as the run's own output — untrusted: only numbered object
keys under the run's prefix are ever presigned, and only names the artifact store accepts
(relative, no '.'/'..' parts, no control characters) are listed, each once."""

from __future__ import annotations

from orchestrator.engines.ecs_files import parse_manifest

SHA = "a" * 64


def test_a_tampered_manifest_names_nothing_outside_the_run():
    manifest = "\n".join([
        f"F\t1\t5\t{SHA}\tgood.txt",
        f"F\t2\t5\t{SHA}\tsub/ok.bin",
        f"F\t../../uploads/inputs/up-x\t5\t{SHA}\tkey-escape",  # a key that is not a number
        f"F\t3\t5\t{SHA}\t../outside",
        f"F\t4\t5\t{SHA}\t/etc/passwd",
        f"F\t5\t5\t{SHA}\ta/./b",
        f"F\t6\t5\t{SHA}\tgood.txt",  # listed twice: the first one stands
        f"F\t7\tlots\t{SHA}\tsize.txt",
        "F\t8\t5\tshort\tsha.txt",
        "F\t9\t5",
        "X\tsomething else",
        "S\tlink: symbolic link, not a regular file",
    ])
    artifacts, skipped = parse_manifest(manifest)
    assert artifacts == [{"name": "good.txt", "size": 5, "sha256": SHA, "key": "1"},
                         {"name": "sub/ok.bin", "size": 5, "sha256": SHA, "key": "2"}]
    assert skipped == ["'../outside': not a usable name (not a plain relative path)",
                       "'/etc/passwd': not a usable name (not a plain relative path)",
                       "'a/./b': not a usable name (not a plain relative path)",
                       "link: symbolic link, not a regular file"]


def test_a_name_that_is_not_utf8_is_skipped_alone_and_said():
    """publish's shell lists a Latin-1 name as it is; the engine reads the manifest's bytes."""

    raw = f"F\t1\t2\t{SHA}\tresults.csv\nF\t2\t2\t{SHA}\tcaf\xe9.csv\n".encode("latin-1")
    artifacts, skipped = parse_manifest(raw.decode("utf-8", "surrogateescape"))
    assert [a["name"] for a in artifacts] == ["results.csv"]
    assert skipped == ["'caf\\xe9.csv': not a usable name (not UTF-8)"]


def test_names_keep_their_tabs_out_and_their_unicode_in():
    artifacts, _ = parse_manifest(f"F\t1\t3\t{SHA}\tnämé with space.txt\n")
    assert artifacts[0]["name"] == "nämé with space.txt"
    assert parse_manifest("") == ([], [])
