"""What `mycli configure` and `%mycli configure` share: the flags, where the endpoint comes from
(the flags, else a deployed stack's outputs), and the saving (endpoint normalised, key checked
against it, profile written 0600, a summary that masks the key).

The fronts only ask for what is missing, each in its own manner (a terminal prompt; a notebook
password box), so the two cannot drift apart on anything else.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from .. import config
from ..errors import ConfigError, MycliError, UsageError

Say = Callable[[str], None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint", metavar="URL", help="the API endpoint, e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod/execute")
    parser.add_argument("--api-key", metavar="KEY",
                        help="the API key; '-' reads it from stdin (a key on the command line is visible to other local users)")
    parser.add_argument("--region", metavar="R", help="AWS region of the deployment")
    parser.add_argument("--stack-name", metavar="NAME", help="discover the endpoint and region from this CloudFormation stack")
    parser.add_argument("--profile", metavar="P", default=None, help="save as this named profile (default: the top-level settings)")
    parser.add_argument("--no-verify", action="store_true", help="save without checking that the endpoint accepts the key")


@dataclass
class Draft:
    """What the flags (and the stack) say so far; the front fills in the rest, then save()."""

    profile: str | None
    endpoint: str | None
    region: str | None
    stack_name: str | None
    verify: bool
    current: dict = field(default_factory=dict)  # the profile's saved values (defaults for questions)


def draft(args: argparse.Namespace, environ: Mapping[str, str] = os.environ) -> Draft:
    profile = None if args.profile in (None, "", "default") else args.profile
    if profile == config.LOCAL_PROFILE:
        raise UsageError(f"the profile {config.LOCAL_PROFILE!r} belongs to the embedded engine; choose another --profile name")
    try:
        current = config.profile_values(profile, environ)
    except ConfigError:
        if profile is None:
            raise
        current = {}  # a new named profile
    endpoint, region = args.endpoint, args.region
    if args.stack_name:
        found = discover(args.stack_name, region or current.get("region"), environ)
        endpoint = endpoint or found["api_endpoint"]
        region = region or found["region"]
    return Draft(profile, endpoint, region, args.stack_name, not args.no_verify, current)


def save(d: Draft, api_key: str, say: Say, warn: Say, environ: Mapping[str, str] = os.environ) -> Path:
    """Check the key against the endpoint (unless --no-verify), write the profile, summarise."""
    if not d.endpoint:
        raise UsageError("an API endpoint is required (--endpoint URL or --stack-name NAME); nothing was saved")
    if not api_key:
        raise UsageError("an API key is required; nothing was saved")
    endpoint = config.normalize_endpoint(d.endpoint)
    region = d.region or d.current.get("region")
    if d.verify:
        _verify(endpoint, api_key, d.profile)
    values = {"api_endpoint": endpoint, "api_key": api_key, "region": region, "stack_name": d.stack_name}
    path = config.update_profile(d.profile, values, environ)
    say(f"✓ Configuration saved to {path} (profile: {d.profile or 'default'})")
    say(f"  API Endpoint: {endpoint}")
    say(f"  API Key:      {mask(api_key)}")
    if region:
        say(f"  Region:       {region}")
    if environ.get("MYCLI_API_ENDPOINT") or environ.get("MYCLI_API_KEY"):
        warn("→ Note: MYCLI_API_ENDPOINT / MYCLI_API_KEY are set in your environment and override this file")
    return path


def mask(key: str) -> str:
    return f"{key[:8]}…{key[-4:]}" if len(key) >= 20 else "****"


def discover(stack_name: str, region: str | None, environ: Mapping[str, str] = os.environ) -> dict:
    """{api_endpoint, region} from the deployed stack, via mycli_magic.aws.deploy (imported only here)."""
    try:
        from .deploy import discover_endpoint
    except ImportError as exc:
        raise MycliError(f"AWS stack discovery is unavailable ({exc}); pass --endpoint and --api-key instead") from None
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION")
    if not region:
        raise UsageError(f"which region is stack {stack_name!r} in? pass --region (e.g. --region us-east-1)")
    endpoint, found_region = discover_endpoint(stack_name, region)
    return {"api_endpoint": endpoint, "region": found_region or region}


def _verify(endpoint: str, api_key: str, profile: str | None) -> None:
    from ..client import ApiClient
    from ..errors import ApiRequestError, ConnectionFailed

    client = ApiClient(config.Endpoint(url=endpoint, api_key=api_key, profile=profile, source="configure"), timeout=15)
    try:
        client.call({"action": "list", "limit": 1}, idempotent=False)
    except ApiRequestError as exc:
        if exc.status == 401:
            raise MycliError(f"{endpoint} rejected the API key; nothing was saved") from None
        raise MycliError(f"{endpoint} answered: {exc}; nothing was saved (--no-verify saves anyway)") from None
    except ConnectionFailed:
        raise MycliError(f"cannot reach {endpoint}; nothing was saved (check the URL, or --no-verify to save anyway)") from None
