"""`mycli doctor [--stack-name S] [--region R]`: check a deployed AWS stack part by part and say,
for each part that is wrong, what to run. Exit 0 when nothing is wrong, 1 otherwise."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ...aws.doctor import add_doctor_arguments

    add_doctor_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ...aws.doctor import diagnose_from_args

    report = diagnose_from_args(args)
    print(report.text(), flush=True)
    return 1 if report.problems else 0
