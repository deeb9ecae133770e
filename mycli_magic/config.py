"""Global client configuration: `$MYCLI_HOME/config.yaml` (default ~/.mycli), mode 0600.

Top-level keys (api_endpoint, api_key, region) are the default profile; `profiles:` holds named
ones. MYCLI_API_ENDPOINT / MYCLI_API_KEY override whatever the files say; `--profile` or
MYCLI_PROFILE selects a profile. The embedded engine keeps its endpoint and key in the profile
named `local`, which is never the default.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from .errors import ConfigError

GLOBAL_KEYS = ("api_endpoint", "api_key", "region", "stack_name")
LOCAL_PROFILE = "local"


def home(environ: Mapping[str, str] = os.environ) -> Path:
    """$MYCLI_HOME (`~` expanded), else ~/.mycli.

    A relative MYCLI_HOME is refused rather than made absolute: it would name a different home
    (config, key and embedded engine) in every directory a command runs from.
    """
    value = environ.get("MYCLI_HOME")
    if not value:
        return Path.home() / ".mycli"
    path = Path(value).expanduser()
    if not path.is_absolute():
        raise ConfigError(f"MYCLI_HOME must be an absolute path, not {value[:80]!r} (a relative one is a different home "
                          f"in each directory); e.g. export MYCLI_HOME=\"$PWD/{value[:80]}\"")
    return path


def config_path(environ: Mapping[str, str] = os.environ) -> Path:
    return home(environ) / "config.yaml"


def engine_state_dir(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the embedded engine keeps its SQLite database, workspaces and key hash."""
    return home(environ) / "engine"


def load_global(environ: Mapping[str, str] = os.environ) -> dict:
    path = config_path(environ)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    import yaml

    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML ({_first_line(exc)}); fix or delete it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a mapping of keys (api_endpoint, api_key, region, profiles)")
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"{path}: 'profiles' must map profile names to mappings")
    # a misspelt key (api_endpiont) would otherwise fall back to the embedded engine in silence
    for where, mapping in [("", data), *((f"profiles.{name}.", values) for name, values in profiles.items())]:
        for key in mapping:
            if key not in GLOBAL_KEYS and not (where == "" and key == "profiles"):
                known = ", ".join(GLOBAL_KEYS + (("profiles",) if where == "" else ()))
                raise ConfigError(f"{path}: unknown key '{where}{key}' (known: {known})")
    return data


def save_global(data: dict, environ: Mapping[str, str] = os.environ) -> Path:
    """Write atomically with mode 0600 (the file holds API keys)."""
    import yaml

    path = config_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, default_flow_style=False, sort_keys=False)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


@contextlib.contextmanager
def _locked(environ: Mapping[str, str]) -> Iterator[None]:
    """Serialise read-modify-write of the config file between processes (the embedded engine
    saves its profile while the user may be running `mycli configure`)."""
    import fcntl

    path = config_path(environ)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(path.with_name(".config.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def update_profile(profile: str | None, values: dict, environ: Mapping[str, str] = os.environ) -> Path:
    """Set `values` in the default profile (None) or a named one; keeps everything else."""
    with _locked(environ):
        data = load_global(environ)
        target = data if profile in (None, "", "default") else data.setdefault("profiles", {}).setdefault(profile, {})
        target.update({k: v for k, v in values.items() if v is not None})
        return save_global(data, environ)


def remove_profile(profile: str | None, environ: Mapping[str, str] = os.environ) -> None:
    with _locked(environ):
        data = load_global(environ)
        if profile in (None, "", "default"):
            for key in GLOBAL_KEYS:
                data.pop(key, None)
        else:
            data.get("profiles", {}).pop(profile, None)
        save_global(data, environ)


@dataclass(frozen=True)
class Endpoint:
    url: str
    api_key: str | None
    profile: str | None
    region: str | None = None
    source: str = "config"  # config | environment | embedded


def profile_values(profile: str | None, environ: Mapping[str, str] = os.environ) -> dict:
    data = load_global(environ)
    if profile in (None, "", "default"):
        return {k: data[k] for k in GLOBAL_KEYS if k in data}
    profiles = data.get("profiles", {})
    if profile not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"profile {profile!r} is not in {config_path(environ)} (profiles: {known}); run: mycli configure --profile {profile}")
    return dict(profiles[profile])


def configured_endpoint(profile: str | None = None, environ: Mapping[str, str] = os.environ) -> Endpoint | None:
    """The endpoint the user configured, or None when nothing is (then the embedded engine runs)."""
    profile = profile or environ.get("MYCLI_PROFILE") or None
    values = profile_values(profile, environ)
    url = environ.get("MYCLI_API_ENDPOINT") or values.get("api_endpoint")
    if environ.get("MYCLI_API_ENDPOINT"):  # typed by hand, often without /execute: as configure takes it
        url = normalize_endpoint(url, what="MYCLI_API_ENDPOINT")
    key = environ.get("MYCLI_API_KEY") or values.get("api_key")
    if not url:
        return None
    source = "environment" if environ.get("MYCLI_API_ENDPOINT") else "config"
    return Endpoint(url=str(url), api_key=None if key is None else str(key), profile=profile, region=values.get("region"), source=source)


def normalize_endpoint(url: str, what: str = "endpoint") -> str:
    """An http(s) URL ending in /execute (appended to a bare host or stage URL), the one form
    `configure --endpoint` saves and MYCLI_API_ENDPOINT is read in."""
    from urllib.parse import urlsplit

    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"{what} {url[:80]!r} must be an http:// or https:// URL, "
                          "e.g. https://abc.execute-api.us-east-1.amazonaws.com/prod/execute")
    _check_host_and_port(url, parts, what)
    if not parts.path.rstrip("/").endswith("/execute"):
        url = url.rstrip("/") + "/execute"
    return url.rstrip("/")


def _check_host_and_port(url: str, parts, what: str) -> None:
    """A URL that could never be reached (`http://exa mple.com`, port 99999) is refused when it
    is given, not saved to fail later with an error that blames the server."""
    import re

    shown = f"{what} {url[:80]!r}"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise ConfigError(f"{shown} has a space or control character in it; give the URL without them")
    host = parts.hostname or ""
    if not (re.fullmatch(r"[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?", host) or (":" in host and re.fullmatch(r"[0-9A-Fa-f:.]+", host))):
        raise ConfigError(f"{shown} has no valid host name (letters, digits, '-', '_' and '.', or an IP address)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0 or (port is None and parts.netloc.endswith(":")):
        raise ConfigError(f"{shown} has a bad port: it must be a number from 1 to 65535")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
