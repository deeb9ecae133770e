"""`mycli artifacts ID [-o DIR] [--json]`: what a run left in $MYCLI_OUTPUTS; with -o, saved
under DIR, each file's sha256 checked before it takes its name."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..common import add_json_argument, add_profile_argument, add_ref_argument

    add_ref_argument(parser)
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="download them into DIR (created if needed; names stay inside it; sha256 checked)")
    add_json_argument(parser)
    add_profile_argument(parser)


def run(args: argparse.Namespace) -> int:
    from ..common import open_client, print_answer, print_json

    client = open_client(args)
    if not args.output:
        return print_answer(args, client.artifacts(args.ref), listing_lines)
    from ...downloads import listing_when_complete

    listing = listing_when_complete(client, args.ref)
    paths = save_into(client, listing, args.output, quiet=args.json)
    if args.json:
        print_json({**listing, "artifacts": [{**a, "path": str(p)} for a, p in zip(listing.get("artifacts") or [], paths)]})
    return 0


def listing_lines(listing: dict) -> list[str]:
    """downloads.listing_lines, imported when called: `mycli artifacts --help` stays light."""
    from ...downloads import listing_lines as lines

    return lines(listing)


def save_into(client, listing: dict, directory: str, quiet: bool = False) -> list:
    """Download every listed artifact into `directory`, saying what happened on stderr (stdout
    for the listing itself, unless `quiet`)."""
    from ...downloads import collection_failed, download, nothing_saved_words, saved_line
    from ...errors import MycliError
    from ..common import err

    if not quiet:
        print("\n".join(listing_lines(listing)), flush=True)
    if collection_failed(listing):
        raise MycliError(f"nothing to save in {directory}: {nothing_saved_words(listing)}")
    if not listing.get("artifacts"):
        return []
    saved = download(client, listing, directory)
    for note in saved.notes():
        err(note)
    err(saved_line(listing, directory))
    return saved.paths
