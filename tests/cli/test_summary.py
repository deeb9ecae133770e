"""The per-run cost estimate in the summary line: what AWS bills a Fargate Spot task for.

Sources: AWS Fargate pricing (per second, one-minute minimum, us-east-1 Spot rates as in the
seed) and Amazon VPC pricing ($0.005 per public IPv4 address-hour since February 2024): each
task has a public address (public subnets, no NAT gateway), billed while the task runs.
"""

from __future__ import annotations

import pytest

from mycli_magic.cli.common import finished_line
from mycli_magic.notebook.failures import ExecutionFailed
from mycli_magic.summary import accepted_elapsed, cost_note, could_not_start, estimate_cost, summary_line

HOUR = 3600.0
SPOT_QUARTER_VCPU_HALF_GB_HOUR = 0.25 * 0.01242124 + 0.5 * 0.00136308  # the seed's Spot rates


def test_an_hour_of_a_task_pays_for_its_public_ipv4_address():
    assert estimate_cost(HOUR, vcpu=0, memory_gb=0) == pytest.approx(0.005)
    assert estimate_cost(HOUR) == pytest.approx(SPOT_QUARTER_VCPU_HALF_GB_HOUR + 0.005)


def test_for_a_short_run_the_address_costs_more_than_the_spot_compute():
    five_minutes = estimate_cost(300)
    compute = SPOT_QUARTER_VCPU_HALF_GB_HOUR * 300 / HOUR  # $0.000315, what docs/deployment.md used to say
    assert five_minutes - compute > compute


def test_fargate_bills_at_least_a_minute():
    assert estimate_cost(1) == estimate_cost(60) == pytest.approx((SPOT_QUARTER_VCPU_HALF_GB_HOUR + 0.005) / 60)
    assert estimate_cost(61) > estimate_cost(60)


def test_the_summary_line_says_what_the_estimate_includes():
    note = cost_note({"engine": "ecs", "duration_seconds": 300})
    assert note == "≈ $0.00073 (Fargate Spot, 0.25 vCPU, 0.5 GB, public IPv4)"
    assert cost_note({"engine": "local", "duration_seconds": 300}) == ""


# a run that could not start: after how long ------------------------------------------------------------

NOT_STARTED = {"execution_id": "3f2a9c1b0d4e", "exit_code": 200, "status": "STOPPED", "started_at": None,
               "duration_seconds": None, "created_at": "2026-12-03T07:50:00Z"}


@pytest.mark.parametrize("stopped_at, after", [("2026-12-03T07:50:00Z", "under 1 s"), ("2026-12-03T07:50:07Z", "7 s"),
                                               ("2026-12-03T07:52:05Z", "2 min 05 s")])
def test_a_run_that_could_not_start_says_after_how_long_since_it_was_accepted(stopped_at, after):
    """No started_at, so no duration: the time from created_at to stopped_at says whether it
    failed at once or after a long wait (an image pull, a probe)."""
    run = {**NOT_STARTED, "stopped_at": stopped_at}
    assert could_not_start(run) == f"could not start its command after {after}"
    assert summary_line(run) == f"✗ 3f2a9c1b0d4e · could not start its command after {after} (exit 200)"
    assert finished_line(run) == (f"✗ Execution 3f2a9c1b0d4e could not start its command after {after} "
                                  "(exit code 200; the log above says why)")
    failed = str(ExecutionFailed.from_execution(run))
    assert failed.startswith(f"the run could not start its command after {after} (exit code 200; the log says why)")


def test_without_its_times_the_not_started_words_stay_plain():
    assert could_not_start({"exit_code": 200}) == "could not start its command"
    assert accepted_elapsed({"created_at": "garbage", "stopped_at": "2026-12-03T07:50:07Z"}) == ""
