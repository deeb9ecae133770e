"""`mycli doctor` / `%mycli doctor`: check a deployed stack part by part, the way an outside
review of it did, and say for each part what is wrong and what to run.

The checks themselves are in doctor_checks.py and doctor_services.py; this module runs them, turns an AWS error inside a
check into a finding about that part (one unreadable part does not hide the others), and words
the report the same way for both fronts.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Callable, Mapping

from .stack import AwsError, check_stack_name

OK, PROBLEM, NOTE = "✓", "✗", "·"
# AWS's codes for "your identity may not do this" (IAM, STS and S3 say AccessDenied; Lambda, ECS,
# DynamoDB, Logs and Secrets Manager AccessDeniedException; EC2 UnauthorizedOperation)
ACCESS_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})


@dataclass(frozen=True)
class Finding:
    part: str  # "stack", "function", "roles", ...
    mark: str  # OK, PROBLEM or NOTE (could not be checked, or worth knowing)
    detail: str
    fix: str = ""  # a command to run, or what to do


@dataclass
class Report:
    stack: str
    region: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.mark == PROBLEM]

    def text(self) -> str:
        width = max([len(f.part) for f in self.findings] + [8])
        lines = [f"mycli doctor: stack {self.stack} in {self.region}"]
        for finding in self.findings:
            lines.append(f"  {finding.mark} {finding.part.ljust(width)}  {finding.detail}")
            if finding.fix:
                lines.append(f"    {' ' * width}  → {finding.fix}")
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self) -> str:
        count = len(self.problems)
        if not count:
            return f"{OK} No problems found."
        return f"{PROBLEM} {count} problem{'s' if count > 1 else ''} found in stack {self.stack} ({self.region}); see above."


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stack-name", default=None, help="stack to check (default: the configured one, else mycli)")
    parser.add_argument("--region", help="AWS region (default: the configured one, else your AWS configuration's)")


def diagnose_from_args(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Report:
    from .deploy import target_stack

    stack, region = target_stack(args.stack_name, args.region, environ)
    return diagnose(check_stack_name(stack), region)


def diagnose(stack: str, region: str) -> Report:
    """Every check, in the order a deployment depends on them; the stack's own state first,
    since nothing else can be read without its outputs."""
    from . import doctor_checks as checks
    from . import doctor_services as services

    parts = (("function", checks.check_function), ("roles", checks.check_roles),
             ("task definition", checks.check_task_definition), ("log group", services.check_log_group),
             ("table", services.check_table), ("secret", services.check_secret),
             ("run task", services.check_run_task), ("api", services.check_api))
    report = Report(stack, region)
    context = checks.Context(stack, region)
    report.findings += _run("stack", checks.check_stack, context)
    if not context.outputs:
        return report  # nothing else can be found without them
    for part, check in parts:
        report.findings += _run(part, check, context)
    return report


def _run(part: str, check: Callable, context) -> list[Finding]:
    try:
        return list(check(context))
    except KeyError as exc:  # an output an older template did not have (reported by the stack check)
        return [Finding(part, NOTE, f"not checked: the stack has no {exc.args[0]} output")]
    except AwsError as exc:
        denied = exc.code in ACCESS_DENIED
        return [Finding(part, NOTE if denied else PROBLEM, f"could not be checked: {exc}",
                        "give your AWS identity read access to it" if denied else "")]
