"""Pure parts of the container runtime code: names as podman is given them, the client's
environment, the probe image's bytes, the --cpus a container gets."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from orchestrator.engines.local_probe import probe_image_tar
from orchestrator.engines.local_container import ContainerRun, pull_failure
from orchestrator.engines.local_runtime import ContainerRuntime, ImageInfo, applied_cpu, client_environment, qualified_image


@pytest.mark.parametrize("image, podman", [
    ("python:3.11", "docker.io/library/python:3.11"),
    ("someorg/tool:1", "docker.io/someorg/tool:1"),
    ("ghcr.io/org/tool:1", "ghcr.io/org/tool:1"),
    ("localhost/mycli-test/busybox:1", "localhost/mycli-test/busybox:1"),
    ("127.0.0.1:5000/x/y:1", "127.0.0.1:5000/x/y:1"),
    ("registry:5000/y", "registry:5000/y"),
    ("alpine@sha256:" + "a" * 64, "docker.io/library/alpine@sha256:" + "a" * 64),
])
def test_podman_gets_docker_hub_names_qualified_docker_gets_them_as_written(image, podman):
    assert qualified_image("podman", image) == podman
    assert qualified_image("docker", image) == image


def test_the_runtime_client_gets_its_own_settings_and_nothing_else():
    environ = {"PATH": "/bin", "DOCKER_HOST": "unix:///x.sock", "DOCKER_CONFIG": "/c", "DOCKER_CONTEXT": "ctx",
               "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs", "CONTAINERS_CONF": "/a.conf",
               "CONTAINERS_STORAGE_CONF": "/s.conf", "CONTAINERS_REGISTRIES_CONF": "/r.conf", "XDG_RUNTIME_DIR": "/run/u",
               "HTTPS_PROXY": "http://proxy:3128", "GITHUB_TOKEN": "ghp_x", "API_KEY_HASH": "$2b$", "LD_PRELOAD": "/evil.so"}
    env = client_environment(environ)
    assert env == {k: v for k, v in environ.items() if k not in ("GITHUB_TOKEN", "API_KEY_HASH", "LD_PRELOAD")}


def test_the_probe_image_is_the_same_bytes_every_time_so_it_is_imported_once():
    first, second = probe_image_tar(), probe_image_tar()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    with tarfile.open(fileobj=io.BytesIO(first)) as tar:
        names = tar.getnames()
        assert {"bin/sh", "bin/rm", "etc", "tmp"} <= set(names)
        assert all(member.mtime == 0 and member.uid == 0 for member in tar.getmembers())
    assert any(name.rsplit("/", 1)[-1].startswith(("libc.so", "libc.musl", "ld-")) for name in names)


@pytest.mark.parametrize("cpu, cores, applied", [(0.25, 2, 0.25), (2, 2, 2), (4, 2, 2), (16, None, 16), (1, 1, 1)])
def test_cpus_are_clamped_to_the_cores_the_runtime_has(cpu, cores, applied):
    assert applied_cpu(cpu, cores) == applied


@pytest.mark.parametrize("local_changes", [False, True])
def test_a_container_is_told_of_local_changes_only_when_the_run_has_some(tmp_path, local_changes):
    """A local repository is a fourth mount beside inputs/ and outputs/: it must not pass for local changes."""
    repo = tmp_path / "repo"
    repo.mkdir()
    runtime = ContainerRuntime("docker", "/usr/bin/docker", {}, "e" * 12)
    run = ContainerRun(runtime, "0" * 12, "busybox", tmp_path / "w", tmp_path / "c", None, stdin=False,
                       files=tmp_path / "files", local_changes=local_changes, repo=str(repo))
    names = {run.argv[i + 1] for i, arg in enumerate(run.argv) if arg == "-e"}
    mounts = {run.argv[i + 1] for i, arg in enumerate(run.argv) if arg == "-v"}
    assert f"{repo}:{repo}:ro" in mounts
    assert ("MYCLI_LOCAL_CHANGES" in names) is local_changes
    assert (f"{tmp_path / 'files' / 'local_changes'}:/mycli/local_changes:ro" in mounts) is local_changes


D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


@pytest.mark.parametrize("image, inspected, expected", [
    # docker: the ID with its prefix; a repo digest only for the name's own repository
    ("python:3.11", f'sha256:{"a" * 64}\t["other@{D2}","python@{D1}"]\t["/bin/tini","--"]\t"/app"',
     ImageInfo("sha256:" + "a" * 64, D1, ("/bin/tini", "--"), "/app")),
    ("localhost/x:1", f'sha256:{"a" * 64}\t[]\tnull\t""', ImageInfo("sha256:" + "a" * 64, None, (), "")),
    # podman: an ID without the prefix, names qualified
    ("docker.io/library/python:3.11", f'{"b" * 64}\t["docker.io/library/python@{D1}"]\tnull\t""',
     ImageInfo("sha256:" + "b" * 64, D1, (), "")),
    ("127.0.0.1:5000/org/tool:1", f'{"b" * 64}\t["127.0.0.1:5000/org/tool@{D2}"]\t[]\t"/w"',
     ImageInfo("sha256:" + "b" * 64, D2, (), "/w")),
    ("python:3.11", "not what inspect prints", None),
])
def test_an_image_is_known_by_its_id_and_its_own_repository_digest(image, inspected, expected):
    assert ImageInfo.parse(image, inspected) == expected


@pytest.mark.parametrize("said, words", [
    ("Error response from daemon: manifest for r:5000/x:1 not found: manifest unknown: manifest unknown", "image not found:"),
    ("Error response from daemon: pull access denied for nosuch/thing, repository does not exist or may require "
     "'docker login': denied: requested access to the resource is denied", "image not found:"),
    ("Error: initializing source docker://r:5000/x:1: reading manifest 1 in r:5000/x: manifest unknown", "image not found:"),
    ('Error response from daemon: Get "https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: '
     "no such host", "could not pull"),
    ('Error: initializing source docker://127.0.0.1:1/x:1: pinging container registry 127.0.0.1:1: Get '
     '"https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', "could not pull"),
    ("", "could not pull"),
])
def test_not_found_is_said_only_when_the_registry_said_it(said, words):
    assert pull_failure("x:1", said).startswith(f"{words} x:1")
