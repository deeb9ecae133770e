"""The image you name is the image you get: the command runs under the image's own /bin/sh
whatever its ENTRYPOINT, on docker and podman alike (docs/troubleshooting.md, "An image with an
ENTRYPOINT"); a container that never ran mycli's script is never a success."""

from __future__ import annotations

import os
import secrets
import urllib.request

import pytest

from tests.support import runtimes

BINARY_ENTRYPOINT = 'FROM {busybox}\nENTRYPOINT ["/bin/echo", "ENTRYPOINT-RAN"]\n'
# a conda / jupyter-docker-stacks style wrapper: sets something up, then `exec "$@"`
WRAPPER_ENTRYPOINT = 'FROM {busybox}\nCOPY entry.sh /entry.sh\nENTRYPOINT ["/entry.sh"]\n'
ENTRY_SH = '#!/bin/sh\nexport FROM_ENTRYPOINT=set-up\nexec "$@"\n'
# /bin/sh that runs nothing and exits 0 (the kernel runs `/bin/true` for it)
FAKE_SHELL = 'FROM {busybox}\nRUN ["/bin/busybox", "rm", "/bin/sh"]\nCOPY sh /bin/sh\n'


@pytest.fixture
def engine(container_runtime, runtime_servers):
    return runtime_servers(container_runtime)


@pytest.fixture
def image(engine, tmp_path):
    """`make(dockerfile, **files)` → a tag built for this test, removed after it."""
    made = []

    def make(dockerfile: str, **files: str) -> str:
        tag = f"localhost/mycli-test/image-{len(made)}-{secrets.token_hex(4)}:1"
        runtimes.build_image(engine.runtime, tag, dockerfile, tmp_path / f"build-{len(made)}", files)
        made.append(tag)
        return tag

    yield make
    for tag in made:
        runtimes.client(engine.runtime, "rmi", "-f", tag)


def test_an_image_with_a_binary_entrypoint_runs_the_command(engine, image):
    """hashicorp/terraform's kind: ENTRYPOINT ["/bin/terraform"] would take the engine's wrapper
    as its arguments, and its exit code would be the run's."""
    final = engine.run("echo hi-from-shell; exit 3", image=image(BINARY_ENTRYPOINT))
    lines = engine.all_lines(final["execution_id"])
    assert (final["exit_code"], final["stop_code"]) == (3, "EssentialContainerExited"), lines
    assert "hi-from-shell" in lines
    assert not [line for line in lines if line.startswith("ENTRYPOINT-RAN") or "script.sh" in line], lines
    assert ('→ The image\'s ENTRYPOINT ["/bin/echo", "ENTRYPOINT-RAN"] is not run: the command runs under its '
            "/bin/sh (docs/troubleshooting.md)") in lines  # said, so no one wonders where it went


def test_a_wrapper_entrypoint_is_not_run_either(engine, image):
    """The decision (docs/troubleshooting.md): the image's /bin/sh runs the command, never its
    ENTRYPOINT; what a wrapper entrypoint sets up is the command's to call."""
    tag = image(WRAPPER_ENTRYPOINT, **{"entry.sh": ENTRY_SH})
    final = engine.run('echo "env=${FROM_ENTRYPOINT:-unset}"; /entry.sh sh -c \'echo "called=$FROM_ENTRYPOINT"\'',
                       image=tag)
    lines = engine.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, lines
    assert "env=unset" in lines and "called=set-up" in lines


def test_a_container_that_never_ran_the_script_is_not_a_success(engine, image):
    final = engine.run("echo never", image=image(FAKE_SHELL, sh="#!/bin/true\n"))
    lines = engine.all_lines(final["execution_id"])
    assert (final["exit_code"], final["stop_code"]) == (200, "TaskFailedToStart"), lines
    assert final["stopped_reason"] == ("The command did not run: the container exited 0 without running "
                                       "mycli's script (its /mycli/rc was never written)")
    assert f"✗ {final['stopped_reason']}" in lines and "never" not in lines


def image_id(runtime: str, tag: str) -> str:
    found = runtimes.client(runtime, "image", "inspect", "--format", "{{.Id}}", tag, check=True).stdout.strip()
    return found if found.startswith("sha256:") else f"sha256:{found}"


def test_the_record_and_the_log_name_the_image_that_ran_not_just_its_tag(engine, image, tmp_path):
    """A tag is a name: retagged (or pulled again) it runs something else. Each run keeps the ID
    of what it ran, in its header and its status."""
    tag = image(f'FROM {{busybox}}\nRUN ["/bin/busybox", "sh", "-c", "echo first > /marker"]\n')
    first = engine.run("cat /marker", image=tag)
    runtimes.build_image(engine.runtime, tag, 'FROM {busybox}\nRUN ["/bin/busybox", "sh", "-c", "echo second > /marker"]\n',
                         tmp_path / "again")
    second = engine.run("cat /marker", image=tag)
    ids = []
    for final, marker in ((first, "first"), (second, "second")):
        lines = engine.all_lines(final["execution_id"])
        assert final["exit_code"] == 0 and marker in lines, lines
        assert final["image"] == tag and final["image_id"].startswith("sha256:") and len(final["image_id"]) == 71
        assert f"→ Image: {tag} ({final['image_id']})" in lines
        ids.append(final["image_id"])
    assert ids[0] != ids[1] and ids[1] == image_id(engine.runtime, tag)


def test_the_default_image_is_named_in_the_header_too(engine):
    final = engine.run("true")
    assert f"→ Image: {runtimes.busybox()} ({final['image_id']})" in engine.all_lines(final["execution_id"])
    assert final["image_id"] == image_id(engine.runtime, runtimes.busybox())


def registry_digest(image: str) -> str:
    """What the registry itself says the tag's manifest is (Docker-Content-Digest)."""
    host, _, rest = image.partition("/")
    name, _, tag = rest.rpartition(":")
    request = urllib.request.Request(f"http://{host}/v2/{name}/manifests/{tag}", method="HEAD", headers={
        "Accept": "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.headers["Docker-Content-Digest"]


def test_a_pulled_image_is_recorded_with_its_registry_digest(engine):
    image = os.environ["MYCLI_TEST_REGISTRY_IMAGE"]
    runtimes.client(engine.runtime, "rmi", "-f", image)
    try:
        final = engine.run("true", image=image)
        assert final["exit_code"] == 0, engine.all_lines(final["execution_id"])
        assert final["image_digest"] == registry_digest(image)
        assert final["image_id"] == image_id(engine.runtime, image)
    finally:
        runtimes.client(engine.runtime, "rmi", "-f", image)
