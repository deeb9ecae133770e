"""Many small files in (`tiny`): 20,000 files of 100 bytes in 40 directories, as a dataset of
per-sample files is. The client's packer (`transfer.pack_uploads`) beside `tar czf` of the same
tree, and beside the packer mycli had before (tarfile's `add`: a pax record and an owner lookup
per member); then the whole upload on the embedded host engine — pack, upload, PUT, exec (which
answers once the inputs are extracted) — beside `tar czf` + `tar xzf`. All in the same run."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

from files_bench import Client
from harness import Row, server_process

FILES, PER_DIR = 20_000, 500


def _tree(root: Path) -> Path:
    data = root / "many"
    for i in range(FILES):
        folder = data / f"d{i // PER_DIR:03d}"
        if i % PER_DIR == 0:
            folder.mkdir(parents=True)
        (folder / f"f{i:05d}.txt").write_bytes(b"%098d\n" % i)
    return data


def _median(n: int, step) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _old_pack(data: Path, out: Path) -> None:
    """What pack_uploads did before: tarfile.add, recursive, with the owner cleared per member."""
    def portable(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(out, "w:gz", compresslevel=1) as tar:
        tar.add(data, arcname=data.name, recursive=True, filter=portable)


def many_small_files(quick: bool) -> list[Row]:
    from mycli_magic.transfer import pack_uploads

    n = 1 if quick else 3
    work = Path(tempfile.mkdtemp(prefix="mycli-tiny-bench-"))
    try:
        data = _tree(work)
        packs = work / "packs"
        packs.mkdir()

        def fresh() -> Path:
            shutil.rmtree(packs)
            packs.mkdir()
            return packs

        pack = _median(n, lambda: pack_uploads([data], fresh()))
        old = _median(n, lambda: _old_pack(data, fresh() / "old.tar.gz"))
        tar_c = _median(n, lambda: subprocess.run(["tar", "czf", str(fresh() / "b.tgz"), "-C", str(work), "many"], check=True))

        def tar_both() -> None:
            dest = fresh() / "x"
            dest.mkdir()
            subprocess.run(["tar", "czf", str(packs / "b.tgz"), "-C", str(work), "many"], check=True)
            subprocess.run(["tar", "xzf", str(packs / "b.tgz"), "-C", str(dest)], check=True)

        tar_cx = _median(n, tar_both)
        home = Path(tempfile.mkdtemp(prefix="mycli-tiny-bench-home-"))
        env = {**os.environ, "MYCLI_LOCAL_RUNTIME": "host"}
        with server_process(home, env) as (_, url, key):
            client = Client(url, key)

            def upload() -> None:
                packed = pack_uploads([data], fresh())
                up = client.call({"action": "upload", "size": packed.size, "sha256": packed.sha256, "purpose": "inputs"})
                client.put(up["url"], packed.path)
                client.call({"action": "exec", "command": "true", "skip_git": True, "inputs": up["upload_id"]})

            whole = _median(n, upload)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return [
        Row(f"{FILES:,} × 100 B files: client pack (pack_uploads)", pack, "tar czf of the same tree", tar_c,
            "≤ 3×", pack <= 3 * tar_c, unit="s", note=f"the packer before (tarfile.add): {old:.2f} s in this run"),
        Row(f"{FILES:,} × 100 B files: pack → upload → PUT → exec, inputs extracted", whole,
            "tar czf + tar xzf of the same tree", tar_cx, "≤ 3×", whole <= 3 * tar_cx, unit="s"),
    ]
