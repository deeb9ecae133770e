"""Every benchmark, one command: `python3 bench/run.py [NAME ...] [--quick]`.

Each figure is printed beside a baseline measured in the same run, because this machine is
shared and noisy: ratios hold, absolute times don't. Nothing here passes or fails; the table
says where a target is met. Names: cli, ipython, handler, import, latency, concurrent, lines,
follow, files (a 100 MiB artifact and upload), probe (auto's wait on a hung docker), tiny (20,000 small
files uploaded), and the hardening figures: flood, paging, fulldisk (root: mounts a tmpfs), escape.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Row, median_wall, print_table  # noqa: E402

PY = sys.executable


def bench_cli(quick: bool) -> list[Row]:
    n = 5 if quick else 15
    base = median_wall([PY, "-c", "pass"], n)
    mycli = median_wall([PY, "-m", "mycli_magic.cli", "--version"], n)
    return [Row("mycli --version wall time", mycli, "python3 -c pass", base, "≤ 2×", mycli <= 2 * base, unit="ms")]


def bench_ipython(quick: bool) -> list[Row]:
    n = 3 if quick else 7
    base = median_wall([PY, "-m", "IPython", "--quick", "--no-banner", "-c", "pass"], n)
    loaded = median_wall([PY, "-m", "IPython", "--quick", "--no-banner", "-c", "%load_ext mycli_magic"], n)
    return [Row("IPython start with %load_ext mycli_magic", loaded, "IPython start without it", base,
                "≤ 1.1×", loaded <= 1.1 * base, unit="ms")]


def bench_import(quick: bool) -> list[Row]:
    n = 5 if quick else 11
    base = median_wall([PY, "-c", "import boto3"], n)
    cold = median_wall([PY, "-c", "import orchestrator.handler as h; h.engine_from_env"], n)
    # botocore is imported lazily, on the first AWS call: count it, as a cold Lambda pays it too
    first_call = ("import orchestrator.handler, orchestrator.engines.ecs_aws as a; "
                  "a.Clients('us-east-1').ecs")
    cold_ecs = median_wall([PY, "-c", first_call], n) \
        if _has_module("orchestrator.engines.ecs") else None
    rows = [Row("orchestrator cold import (handler)", cold, "python3 -c 'import boto3'", base, "≤ 1.2×", cold <= 1.2 * base, unit="ms")]
    if cold_ecs is not None:
        client_base = median_wall([PY, "-c", "import boto3; boto3.client('ecs', region_name='us-east-1')"], n)
        rows.append(Row("cold start: handler + ECS engine + first AWS client", cold_ecs,
                        "import boto3 + boto3.client('ecs')", client_base,
                        "≤ 1.2×", cold_ecs <= 1.2 * client_base, unit="ms"))
    return rows


def bench_handler(quick: bool) -> list[Row]:
    from engine_bench import handler_warm, wrong_key_timing

    from aws_bench import handler_warm_aws

    return handler_warm(quick) + handler_warm_aws(quick) + wrong_key_timing(quick)


def bench_latency(quick: bool) -> list[Row]:
    from engine_bench import exec_to_stopped

    return exec_to_stopped(quick)


def bench_concurrent(quick: bool) -> list[Row]:
    from engine_bench import concurrent

    return concurrent(100 if quick else 500)


def bench_lines(quick: bool) -> list[Row]:
    from engine_bench import many_lines

    return many_lines(100_000 if quick else 1_000_000)


def bench_containers(quick: bool) -> list[Row]:
    from container_bench import exec_to_stopped_in_a_container

    return exec_to_stopped_in_a_container(quick)


def bench_probe(quick: bool) -> list[Row]:
    from probe_bench import healthy_docker_probe, hung_docker_probe

    return hung_docker_probe(quick) + healthy_docker_probe(quick)


def bench_files(quick: bool) -> list[Row]:
    from files_bench import file_round_trips

    return file_round_trips(quick)


def bench_tiny(quick: bool) -> list[Row]:
    from tiny_files_bench import many_small_files

    return many_small_files(quick)


def bench_follow(quick: bool) -> list[Row]:
    from engine_bench import follow_latency

    return follow_latency(quick)


def bench_flood(quick: bool) -> list[Row]:
    from hardening_bench import health_under_flood

    return health_under_flood(quick)


def bench_paging(quick: bool) -> list[Row]:
    from hardening_bench import paging_rss

    return paging_rss(quick)


def bench_fulldisk(quick: bool) -> list[Row]:
    from hardening_bench import full_disk_rss

    return full_disk_rss(quick)


def bench_escape(quick: bool) -> list[Row]:
    from hardening_bench import stop_with_escapee

    return stop_with_escapee(quick)


BENCHES = {
    "cli": bench_cli,
    "ipython": bench_ipython,
    "import": bench_import,
    "handler": bench_handler,
    "latency": bench_latency,
    "concurrent": bench_concurrent,
    "lines": bench_lines,
    "follow": bench_follow,
    "flood": bench_flood,
    "paging": bench_paging,
    "fulldisk": bench_fulldisk,
    "escape": bench_escape,
    "containers": bench_containers,
    "files": bench_files,
    "probe": bench_probe,
    "tiny": bench_tiny,
}


def _has_module(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"which benchmarks (default: all): {', '.join(BENCHES)}")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller loads")
    args = parser.parse_args()
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHES)}")
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="mycli-bench-") as home:
        os.environ["MYCLI_HOME"] = home
        os.environ["MYCLI_LOCAL_RUNTIME"] = "host"
        for name in args.names or list(BENCHES):
            started = time.monotonic()
            try:
                new = BENCHES[name](args.quick)
            except Exception as exc:  # one broken benchmark should not hide the others
                new = [Row(f"{name}: failed ({type(exc).__name__}: {exc})", None, "", None, "", False)]
            rows += new
            print_table(new, header=not rows[: -len(new)] if new else False)
            print(f"  ({name} took {time.monotonic() - started:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
