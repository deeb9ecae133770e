"""`mycli server [--host H] [--port P] [--state-dir D] [--engine local|aws]`, `mycli server stop`
and `mycli server status` (exit 3 when no engine runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXIT_NOT_RUNNING = 3  # `server status` when no engine runs, as an LSB init script's status says


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["start", "stop", "status"], default="start",
                        help="start (default, in the foreground), stop the running engine, or show its status")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, loopback only)")
    from ..common import int_in_range

    parser.add_argument("--port", type=int_in_range(0, 65535), default=8765, help="port (default: 8765; 0 picks a free one)")
    parser.add_argument("--state-dir", type=Path, default=None,
                        help="where executions, logs and the key hash live (default: $MYCLI_HOME/engine)")
    parser.add_argument("--engine", choices=["local", "aws"], default="local",
                        help="local: run commands on this machine; aws: the AWS engine, as the Lambda runs it")
    parser.add_argument("--stack-name", help="with --engine aws: the deployed stack whose settings to use "
                        "(default: the configured stack, else mycli; not needed when MYCLI_CLUSTER etc. are set)")
    parser.add_argument("--region", help="with --engine aws: the stack's region (default: the configured one)")
    parser.add_argument("--quiet", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    import os

    from ... import config, embedded, engine_notes

    if args.action == "stop":
        print(embedded.stop_server())
        return 0
    if args.action == "status":
        info = embedded.running_server()
        if not info:
            print("No embedded local engine is running (the next command starts one; or run: mycli server).")
            return EXIT_NOT_RUNNING
        print("\n".join(engine_notes.status_lines(info, config.engine_state_dir(), os.environ, "mycli server stop")))
        return 0
    if args.engine == "aws":
        state_dir = args.state_dir or config.home() / "engine-aws"
        return embedded.run_server(args.host, args.port, state_dir, engine="ecs", quiet=args.quiet,
                                       environ=_aws_environ(args))
    state_dir = args.state_dir or config.engine_state_dir()
    return embedded.run_server(args.host, args.port, state_dir, engine="local", quiet=args.quiet)


def _aws_environ(args: argparse.Namespace) -> dict:
    """The Lambda's settings read from the deployed function (see orchestrator/engines/ecs_settings.py),
    unless the environment already names the cluster and no stack was asked for."""
    import os

    if os.environ.get("MYCLI_CLUSTER") and not args.stack_name:
        return dict(os.environ)
    from ...aws.deploy import server_environ, target_stack

    return server_environ(*target_stack(args.stack_name, args.region), os.environ)
