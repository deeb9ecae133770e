"""The image you name is the image you get: the command runs under the image's own /bin/sh
whatever its ENTRYPOINT, on docker and podman alike (docs/troubleshooting.md, "An image with an
ENTRYPOINT"); a container that never ran mycli's script is never a success."""

from __future__ import annotations

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
        tag = f"localhost/mycli-test/image-{len(made)}-{tmp_path.name.lower()[-12:]}:1"
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
    assert not [line for line in lines if "ENTRYPOINT-RAN" in line or "script.sh" in line], lines


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
