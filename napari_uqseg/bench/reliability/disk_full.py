"""A real full disk under the server: its data folder on a small tmpfs, filled until writes fail.

Corrections and predictions are sent until the disk refuses them; every answer must be 2xx or a clear 507
(never a 5xx other than 507), every acknowledged correction must be in the ledger with its file, and after
space is freed the server stores again. Needs permission to mount a tmpfs (root); otherwise it is skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import requests

from napari_uqseg.bench.reliability.corpus import label_b64
from napari_uqseg.core.nifti_io import nifti_bytes
from napari_uqseg.core.sample_data import synthetic_case
from napari_uqseg.server.launcher import start_server
from napari_uqseg.server.ledger import Ledger

TMPFS_MB = 48
LEAVE_FREE_KB = 1536
MAX_REQUESTS = 400


@dataclass
class DiskFullFigures:
    """Outcome of the disk-full run."""

    skipped: str = ""
    requests: int = 0
    acknowledged: int = 0
    refused_507: int = 0
    other_errors: int = 0
    found_after: int = 0
    lost: int = 0
    stores_again_after_freeing: bool = False
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "problems"} | {"problems": self.problems[:20]}


@contextlib.contextmanager
def small_filesystem(mount_point: Path, size_mb: int) -> Iterator[Path]:
    """Mount a tmpfs of ``size_mb`` MiB at ``mount_point`` (RuntimeError if not permitted)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"cannot mount a tmpfs ({done.stderr.strip() or done.returncode})")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def _fill(path: Path, leave_kb: int) -> Path:
    """Write a filler file until only ``leave_kb`` KiB stay free on ``path``'s filesystem."""
    filler = path / "filler.bin"
    free = os.statvfs(path).f_bavail * os.statvfs(path).f_frsize
    with open(filler, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave_kb * 1024))
    return filler


def _send_until_full(server: Any, figures: DiskFullFigures) -> dict[str, str]:
    """Alternate corrections and predictions until 20 answers in a row refuse; returns acknowledged keys."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    image, label = synthetic_case((20, 20, 20), seed=55)
    data = nifti_bytes(image, dtype=np.float32)
    sha = hashlib.sha256(data).hexdigest()
    session.put(f"{server.url}/v1/images/{sha}", data=data, timeout=60).raise_for_status()
    pid = session.post(f"{server.url}/v1/predictions", json={"image": sha, "model": "tiny_det"}, timeout=120).json()
    labels = label_b64(label.array.astype(np.uint8), label.affine)
    acked, refused_in_row = {}, 0
    for n in range(MAX_REQUESTS):
        if n % 2:
            r = session.post(f"{server.url}/v1/predictions", json={"image": sha, "model": "tiny_det"}, timeout=120)
        else:
            body = {"prediction": pid["id"], "label": labels, "client_key": f"full-{n}"}
            r = session.post(f"{server.url}/v1/corrections", json=body, timeout=120)
        figures.requests += 1
        if r.status_code in (200, 201):
            refused_in_row = 0
            figures.acknowledged += n % 2 == 0
            if n % 2 == 0:
                acked[f"full-{n}"] = r.json()["id"]
        elif r.status_code == 507 and r.json()["error"]["message"]:
            figures.refused_507 += 1
            refused_in_row += 1
        else:
            figures.other_errors += 1
            figures.problems.append(f"request {n}: {r.status_code} {r.text[:160]}")
        if refused_in_row >= 20:
            break
    session.close()
    return acked


def run_disk_full(work: Path, models: dict[str, Path]) -> DiskFullFigures:
    """The disk-full scenario (``skipped`` says why when a tmpfs cannot be mounted here)."""
    figures = DiskFullFigures()
    try:
        with small_filesystem(work / "data", TMPFS_MB) as mount:
            data = mount  # the data folder is the small filesystem; the server log stays outside it
            server = start_server(data, models, extra_args=["--min-free-mb", "0"])
            filler = _fill(mount, LEAVE_FREE_KB)
            try:
                acked = _send_until_full(server, figures)
                filler.unlink()
                figures.stores_again_after_freeing = _stores_again(server)
            finally:
                server.stop()
            _count(figures, data, acked)
    except RuntimeError as exc:
        figures.skipped = str(exc)
    return figures


def _stores_again(server: Any) -> bool:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {server.token}"
    image, _ = synthetic_case((12, 12, 12), seed=56)
    data = nifti_bytes(image, dtype=np.float32)
    r = session.put(f"{server.url}/v1/images/{hashlib.sha256(data).hexdigest()}", data=data, timeout=60)
    return r.status_code == 201


def _count(figures: DiskFullFigures, data: Path, acked: dict[str, str]) -> None:
    ledger = Ledger(data / "ledger.sqlite")
    rows = {r["client_key"]: r["id"] for r in ledger.query("SELECT id, client_key FROM corrections")}
    ledger.close()
    for key, cid in acked.items():
        path = data / "corrections" / f"{cid}.nii.gz"
        ok = rows.get(key) == cid and path.is_file() and path.stat().st_size > 0
        figures.found_after += ok
        figures.lost += not ok
