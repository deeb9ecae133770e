"""The Lambda deployment zip: the `orchestrator` package plus bcrypt built for the function's
platform (linux arm64, CPython 3.12), which is not the machine running `mycli init`.

bcrypt has a native extension, so it comes from PyPI as a manylinux aarch64 wheel fetched with
`pip download --platform ... --only-binary=:all:` (never built here) and is cached under
MYCLI_HOME. MYCLI_LAMBDA_WHEELS may name a folder that already holds the wheel (offline, CI).
boto3 is not packed: the Lambda runtime provides it. The zip is reproducible: sorted entries and
fixed timestamps, so the same sources give the same CodeSha256.

The function's handler is `index.handler`: CloudFormation stores the template's inline placeholder
code as index.py, so the same handler answers a clear 503 before the code is uploaded, and the
package's own index.py hands every request to `orchestrator.handler.handler` afterwards.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Callable, Mapping

from .. import config
from ..errors import MycliError

LAMBDA_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64", "manylinux_2_34_aarch64")
LAMBDA_PYTHON = "3.12"
BCRYPT_REQUIREMENT = "bcrypt>=4.1"
WHEELS_ENV = "MYCLI_LAMBDA_WHEELS"
ZIP_TIME = (2020, 1, 1, 0, 0, 0)
ENTRY_MODULE = ("index.py", b'"""Lambda entry point (Handler: index.handler)."""\nfrom orchestrator.handler import handler  # noqa: F401\n')


class PackagingError(MycliError):
    pass


def wheel_cache(environ: Mapping[str, str] = os.environ) -> Path:
    return config.home(environ) / "cache" / "lambda-wheels"


def find_bcrypt_wheel(folder: Path) -> Path | None:
    wheels = sorted(folder.glob("bcrypt-*aarch64*.whl")) if folder.is_dir() else []
    return wheels[-1] if wheels else None


def bcrypt_wheel(environ: Mapping[str, str] = os.environ, progress: Callable[[str], None] = lambda _: None) -> Path:
    """The bcrypt wheel for the Lambda: from MYCLI_LAMBDA_WHEELS, the cache, or PyPI (then cached)."""
    if environ.get(WHEELS_ENV):
        folder = Path(environ[WHEELS_ENV])
        wheel = find_bcrypt_wheel(folder)
        if wheel is None:
            raise PackagingError(f"{WHEELS_ENV}={folder} holds no bcrypt-*aarch64*.whl; download it with: "
                                 f"{' '.join(pip_download_argv(folder))}")
        return wheel
    cache = wheel_cache(environ)
    wheel = find_bcrypt_wheel(cache)
    if wheel:
        return wheel
    progress("  Downloading bcrypt for the Lambda (linux arm64, Python 3.12)...")
    cache.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run(pip_download_argv(cache), capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PackagingError(f"could not run pip to fetch bcrypt for the Lambda ({exc}); set {WHEELS_ENV}") from None
    wheel = find_bcrypt_wheel(cache)
    if done.returncode != 0 or wheel is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise PackagingError(
            f"could not download bcrypt for the Lambda (pip: {last}); check the network, or set {WHEELS_ENV} "
            "to a folder holding the manylinux aarch64 cp312 wheel"
        )
    return wheel


def pip_download_argv(dest: Path) -> list[str]:
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
            "--implementation", "cp", "--python-version", LAMBDA_PYTHON, "-d", str(dest)]
    for platform in LAMBDA_PLATFORMS:
        argv += ["--platform", platform]
    return argv + [BCRYPT_REQUIREMENT]


def orchestrator_files() -> list[tuple[str, Path]]:
    """(archive name, path) of every module of the installed orchestrator package."""
    import orchestrator

    root = Path(orchestrator.__file__).resolve().parent
    return sorted(
        (f"orchestrator/{path.relative_to(root).as_posix()}", path)
        for path in root.rglob("*.py")
        if "__pycache__" not in path.parts
    )


def build_zip(environ: Mapping[str, str] = os.environ, progress: Callable[[str], None] = lambda _: None) -> bytes:
    """The deployment package as bytes (a few hundred KB)."""
    wheel = bcrypt_wheel(environ, progress)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        _add(archive, ENTRY_MODULE[0], ENTRY_MODULE[1], 0o644)
        for name, path in orchestrator_files():
            _add(archive, name, path.read_bytes(), 0o644)
        with zipfile.ZipFile(wheel) as source:
            for info in sorted(source.infolist(), key=lambda i: i.filename):
                if info.is_dir():
                    continue
                mode = (info.external_attr >> 16) & 0o777 or 0o644
                _add(archive, info.filename, source.read(info), mode)
    return out.getvalue()


def _add(archive: zipfile.ZipFile, name: str, data: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.external_attr = (0o100000 | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, data)
