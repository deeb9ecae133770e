"""`mycli configure`: point mycli at an API endpoint and key, saved to $MYCLI_HOME/config.yaml (0600).

Interactive by default (asks for what the flags did not give, keeping current values on an empty
answer); non-interactive with --endpoint and --api-key. --stack-name reads the endpoint and
region from a deployed CloudFormation stack (the API key is never a stack output: it is asked
for). The key is checked against the endpoint before anything is saved (--no-verify skips that).
"""

from __future__ import annotations

import argparse
import sys

from ..errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL", help="the API endpoint, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod/execute")
    parser.add_argument("--api-key", metavar="KEY",
                        help="the API key; '-' reads it from stdin (a key on the command line is visible to other local users)")
    parser.add_argument("--region", metavar="R", help="AWS region of the deployment")
    parser.add_argument("--stack-name", metavar="NAME", help="discover the endpoint and region from this CloudFormation stack")
    parser.add_argument("--profile", metavar="P", default=None, help="save as this named profile (default: the top-level settings)")
    parser.add_argument("--no-verify", action="store_true", help="save without checking that the endpoint accepts the key")


def run(args: argparse.Namespace) -> int:
    from .. import config

    profile = None if args.profile in (None, "", "default") else args.profile
    if profile == config.LOCAL_PROFILE:
        raise UsageError(f"the profile {config.LOCAL_PROFILE!r} belongs to the embedded engine; choose another --profile name")
    current = _current(profile)
    region = args.region
    endpoint = args.endpoint
    if args.stack_name:
        found = discover(args.stack_name, region or current.get("region"))
        endpoint = endpoint or found.get("api_endpoint")
        region = region or found.get("region")
    api_key = _read_stdin_key() if args.api_key == "-" else args.api_key

    interactive = not (endpoint and api_key)
    if interactive:
        _err(f"Configuring mycli{'' if profile is None else f' profile {profile!r}'} "
             f"(press Enter to keep the value in brackets)")
        endpoint = endpoint or _ask("API endpoint", current.get("api_endpoint"))
        api_key = api_key or _ask("API key", current.get("api_key"), secret=True)
        if not args.stack_name and not args.region:
            region = _ask("AWS region (optional)", current.get("region"), required=False)
    endpoint = normalize_endpoint(endpoint)
    region = region or current.get("region")

    if not args.no_verify:
        _verify(endpoint, api_key, profile)
    values = {"api_endpoint": endpoint, "api_key": api_key, "region": region, "stack_name": args.stack_name}
    path = config.update_profile(profile, values)
    print(f"✓ Configuration saved to {path} (profile: {profile or 'default'})")
    print(f"  API Endpoint: {endpoint}")
    print(f"  API Key:      {mask(api_key)}")
    if region:
        print(f"  Region:       {region}")
    import os

    if os.environ.get("MYCLI_API_ENDPOINT") or os.environ.get("MYCLI_API_KEY"):
        _err("→ Note: MYCLI_API_ENDPOINT / MYCLI_API_KEY are set in your environment and override this file")
    return 0


def normalize_endpoint(url: str) -> str:
    """An http(s) URL ending in /execute (appended to a bare host or stage URL)."""
    from urllib.parse import urlsplit

    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise UsageError(f"endpoint {url[:80]!r} must be an http:// or https:// URL, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod/execute")
    if not parts.path.rstrip("/").endswith("/execute"):
        url = url.rstrip("/") + "/execute"
    return url.rstrip("/")


def mask(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}" if len(key) >= 20 else "****"


def discover(stack_name: str, region: str | None) -> dict:
    """{api_endpoint, region} from the deployed stack, via mycli_magic.aws_deploy (imported only here)."""
    import os

    from ..errors import MycliError

    try:
        from ..aws_deploy import discover_endpoint
    except ImportError as exc:
        raise MycliError(f"AWS stack discovery is unavailable ({exc}); pass --endpoint and --api-key instead") from None
    region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UsageError(f"which region is stack {stack_name!r} in? pass --region (e.g. --region us-east-1)")
    found = discover_endpoint(stack_name, region)
    if isinstance(found, str):
        return {"api_endpoint": found, "region": region}
    if isinstance(found, tuple) and found and found[0]:
        return {"api_endpoint": found[0], "region": (found[1] if len(found) > 1 else None) or region}
    if isinstance(found, dict) and (found.get("api_endpoint") or found.get("ApiEndpoint")):
        return {"api_endpoint": found.get("api_endpoint") or found["ApiEndpoint"], "region": found.get("region") or region}
    raise MycliError(f"stack {stack_name!r} has no API endpoint output; is it a mycli stack?")


# internals ---------------------------------------------------------------------------------


def _current(profile: str | None) -> dict:
    from .. import config
    from ..errors import ConfigError

    try:
        return config.profile_values(profile)
    except ConfigError:
        if profile is None:
            raise
        return {}  # a new named profile


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _ask(label: str, current: str | None, secret: bool = False, required: bool = True) -> str | None:
    shown = (mask(current) if secret else current) if current else ""
    prompt = f"{label}{f' [{shown}]' if shown else ''}: "
    if secret and sys.stdin.isatty():
        import getpass

        answer = getpass.getpass(prompt, stream=sys.stderr)
    else:
        sys.stderr.write(prompt)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line:
            raise UsageError(f"no answer for {label!r} (stdin ended); to configure without prompts pass --endpoint and --api-key")
        answer = line.rstrip("\r\n")
    answer = answer.strip() or (current or "")
    if required and not answer:
        raise UsageError(f"{label} is required; nothing was saved")
    return answer or None


def _read_stdin_key() -> str:
    key = sys.stdin.readline().strip()
    if not key:
        raise UsageError("--api-key - read nothing from stdin; nothing was saved")
    return key


def _verify(endpoint: str, api_key: str, profile: str | None) -> None:
    from .. import config
    from ..client import ApiClient
    from ..errors import ApiRequestError, ConnectionFailed, MycliError

    client = ApiClient(config.Endpoint(url=endpoint, api_key=api_key, profile=profile, source="configure"), timeout=15)
    try:
        client.call({"action": "list", "limit": 1}, idempotent=False)
    except ApiRequestError as exc:
        if exc.status == 401:
            raise MycliError(f"{endpoint} rejected the API key; nothing was saved") from None
        raise MycliError(f"{endpoint} answered: {exc}; nothing was saved (--no-verify saves anyway)") from None
    except ConnectionFailed:
        raise MycliError(f"cannot reach {endpoint}; nothing was saved (check the URL, or --no-verify to save anyway)") from None
