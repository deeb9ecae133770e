"""Uploaded inputs in an image that runs as another user (USER 1000:1000, as jupyter's images do),
on docker and podman: what the client packs — files the owner alone could read, a closed
directory, an executable, links in and out of the uploaded directory — arrives readable by the
image's user, with the modes the docs say. The image is built here, offline, FROM the busybox
test image."""

from __future__ import annotations

import os

import pytest

from mycli_magic.transfer import pack_uploads
from tests.support import runtimes
from tests.support.files import upload

pytestmark = pytest.mark.containers

IMAGE = "localhost/mycli-test/user1000:1"


@pytest.fixture
def user_image(container_runtime, runtime_servers, tmp_path):
    (tmp_path / "Containerfile").write_text(f"FROM {runtimes.busybox()}\nUSER 1000:1000\n")
    built = runtimes.client(container_runtime, "build", "-q", "--network", "none", "-t", IMAGE,
                            "-f", str(tmp_path / "Containerfile"), str(tmp_path), timeout=120)
    assert built.returncode == 0, built.stderr
    return runtime_servers(container_runtime)


def test_inputs_are_readable_by_the_user_the_image_runs_as(user_image, tmp_path):
    data, elsewhere = tmp_path / "priv", tmp_path / "elsewhere"
    (data / "closed").mkdir(parents=True)
    elsewhere.mkdir()
    (data / "private.csv").write_text("secret-ish\n")
    (data / "closed" / "deep.csv").write_text("deep\n")
    (data / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    (elsewhere / "shared.csv").write_text("shared\n")
    (elsewhere / "shared.csv").chmod(0o600)
    (data / "shared.csv").symlink_to(elsewhere / "shared.csv")  # out of the upload: its content
    (data / "alias.csv").symlink_to("private.csv")  # inside: a link
    for path, mode in ((data / "private.csv", 0o600), (data / "closed" / "deep.csv", 0o600),
                       (data / "tool.sh", 0o700), (data / "closed", 0o700), (data, 0o700)):
        path.chmod(mode)
    work = tmp_path / "work"
    work.mkdir()
    upload_id = upload(user_image, pack_uploads([data], work).path.read_bytes())
    command = ('id -u; cd "$MYCLI_INPUTS/priv" && cat private.csv closed/deep.csv shared.csv alias.csv && ./tool.sh && '
               'for f in . closed private.csv closed/deep.csv tool.sh shared.csv; do echo "mode $(stat -c %a "$f") $f"; done; '
               'test -L alias.csv && echo alias-is-a-link')
    final = user_image.run(command, image=IMAGE, inputs=upload_id)
    lines = user_image.all_lines(final["execution_id"])
    assert final["exit_code"] == 0, lines
    assert "1000" in lines  # the command ran as the image's user
    assert {"secret-ish", "deep", "shared", "tool ran", "alias-is-a-link"} <= set(lines), lines
    modes = {line for line in lines if line.startswith("mode ")}
    assert modes == {"mode 755 .", "mode 755 closed", "mode 644 private.csv", "mode 644 closed/deep.csv",
                     "mode 755 tool.sh", "mode 644 shared.csv"}, lines
    assert os.stat(data / "private.csv").st_mode & 0o777 == 0o600  # the user's own files are left as they were
