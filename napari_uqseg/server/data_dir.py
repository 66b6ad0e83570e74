"""Files of the server's data folder: images by sha256, prediction outputs, corrections, model versions.

Layout (every name below is server-made or validated against ``core.wire`` patterns)::

    data_dir/ledger.sqlite  token
    data_dir/images/<sha256>                    uploaded NIfTI bytes, as received
    data_dir/predictions/<id>/<output>.nii.gz   mask, probabilities, one file per uncertainty map
    data_dir/corrections/<id>.nii.gz            corrected label maps
    data_dir/corrections/<id>.reviewed.nii.gz   their reviewed masks (corrections that have one)
    data_dir/models/<name>/<version>/           model folders (engine.model_folder), never overwritten
    data_dir/jobs/<id>/                         work dir (checkpoints), log, staged model
    data_dir/datasets/<name>/                   MSD-layout datasets for ``train`` jobs (put there by the admin)
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import numpy as np

from napari_uqseg.core.durable import PRIVATE_DIR, PRIVATE_FILE, fsync_tree, make_private, replace_durably
from napari_uqseg.core.errors import InputError, NotFoundError
from napari_uqseg.core.nifti_io import atomic_write_bytes, image_from_bytes, nifti_bytes, volume_from_bytes
from napari_uqseg.core.records import ModelVersion
from napari_uqseg.core.volume import Volume, check_label_array
from napari_uqseg.core.wire import NAME_PATTERN, SHA256_PATTERN, VERSION_PATTERN, check_id, sha256_hex
from napari_uqseg.server.disk_guard import ensure_free, tree_size
from napari_uqseg.server.ledger import Ledger
from napari_uqseg.server.uploads import mapped

SUBFOLDERS = ("images", "predictions", "corrections", "models", "jobs", "datasets")


def safe_path(root: Path, *parts: str) -> Path:
    """``root/parts...`` after checking each part is a plain name and the result stays under ``root``.

    Raises
    ------
    InputError
        A part with a separator, ``..`` or other characters outside ``core.wire.NAME_PATTERN``/ids.
    """
    for part in parts:
        if not (NAME_PATTERN.fullmatch(part) or SHA256_PATTERN.fullmatch(part)):
            raise InputError("path", f"refusing path component {part[:80]!r}")
    path = root.joinpath(*parts).resolve()
    if not path.is_relative_to(root.resolve()):  # defence in depth: the regex already excludes separators
        raise InputError("path", "path escapes the data folder")
    return path


class DataDir:
    """The server's data folder and ledger.

    Parameters
    ----------
    root : Path
        Created, or reset at every start, with mode 0700 (it holds PHI and the token); its
        sub-folders 0700, the files written here 0600.
    max_voxels : int
        Largest image accepted (product of the shape).
    """

    def __init__(self, root: str | Path, max_voxels: int = 512 * 512 * 1024, min_free_mb: int = 0) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        make_private(self.root, recursive=False)  # an existing folder too: it holds PHI and the token
        for sub in SUBFOLDERS:
            (self.root / sub).mkdir(exist_ok=True, mode=PRIVATE_DIR)
            make_private(self.root / sub, recursive=False)
        self.max_voxels = max_voxels
        self.min_free_mb = min_free_mb
        self.ledger = Ledger(self.root / "ledger.sqlite")
        for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "token"):
            if (self.root / name).is_file():
                make_private(self.root / name, recursive=False)

    # -- images ---------------------------------------------------------------------------------
    def put_image(self, sha: str, data: bytes) -> tuple[Volume, bool]:
        """Validate and store uploaded NIfTI bytes under their sha256; returns ``(volume, created)``.

        Raises
        ------
        InputError
            sha256 mismatch, unreadable NIfTI, not 3-D, NaN/Inf, too many voxels, singular affine.
        """
        check_id(sha, "image sha256", SHA256_PATTERN)
        if sha256_hex(data) != sha:
            raise InputError("image", "sha256 of the body does not match the sha256 in the URL (corrupted upload?)")
        path = safe_path(self.root / "images", sha)
        if path.exists():
            return self.image(sha), False
        volume = self._validate_image(data, f"image {sha[:12]}")
        self.ensure_free(len(data))
        atomic_write_bytes(path, data, mode=PRIVATE_FILE)
        return volume, True

    def put_image_file(self, sha: str, upload: Path, digest: str) -> tuple[Volume, bool]:
        """``put_image`` for an upload already streamed to ``upload`` (under ``images/``) with sha256 ``digest``.

        The file is validated through a memory map and renamed into place (or removed when refused).
        """
        try:
            check_id(sha, "image sha256", SHA256_PATTERN)
            if digest != sha:
                raise InputError("image", "sha256 of the body does not match the sha256 in the URL (corrupted upload?)")
            path = safe_path(self.root / "images", sha)
            if path.exists():
                return self.image(sha), False
            with open(upload, "rb") as fh, mapped(fh) as data:
                volume = self._validate_image(data, f"image {sha[:12]}")
                os.fsync(fh.fileno())
            replace_durably(upload, path)
            return volume, True
        finally:
            upload.unlink(missing_ok=True)

    def ensure_free(self, needed: int) -> None:
        """``StorageFullError`` (507) unless ``needed`` bytes fit above the reserve (``min_free_mb``)."""
        ensure_free(self.root, needed, self.min_free_mb)

    def _validate_image(self, data: bytes, source: str) -> Volume:
        return image_from_bytes(data, source, max_voxels=self.max_voxels)  # header checked before the voxels

    def image(self, sha: str) -> Volume:
        check_id(sha, "image sha256", SHA256_PATTERN)
        path = safe_path(self.root / "images", sha)
        if not path.is_file():
            raise NotFoundError("image", f"no image {sha[:12]}...; upload it with PUT /v1/images/{{sha256}} first")
        return image_from_bytes(path.read_bytes(), f"image {sha[:12]}")

    # -- prediction outputs ---------------------------------------------------------------------
    def prediction_dir(self, pid: str) -> Path:
        return safe_path(self.root / "predictions", check_id(pid, "prediction id"))

    def write_outputs(self, pid: str, outputs: dict[str, bytes], durable: bool = False) -> None:
        """Write each output's NIfTI bytes into the prediction folder (staged, then renamed as a set).

        Not fsync'd unless ``durable``: outputs can be recomputed, so the answer does not wait for the disk;
        after a power loss the folder may be missing or hold empty files, and ``output_path`` or the
        client's decoding then says to predict again (corrections, which cannot be recomputed, are always
        fsync'd: ``write_correction``).
        """
        final = self.prediction_dir(pid)
        staging = final.with_name(f".{pid}.staging")
        self.ensure_free(sum(len(d) for d in outputs.values()))
        staging.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        for name, data in outputs.items():
            path = safe_path(staging, name).with_suffix(".nii.gz")
            atomic_write_bytes(path, data, mode=PRIVATE_FILE, durable=durable)
        if durable:
            replace_durably(staging, final)  # the folder's entry is on disk before the ledger row names it
        else:
            os.replace(staging, final)

    def output_path(self, pid: str, name: str) -> Path:
        if not NAME_PATTERN.fullmatch(name):
            raise InputError("output", f"malformed output name {name[:80]!r}")
        path = safe_path(self.prediction_dir(pid), name).with_suffix(".nii.gz")
        if not self.prediction_dir(pid).is_dir():
            raise NotFoundError("output", f"prediction {pid}'s outputs were removed (retention); predict again")
        if not path.is_file():
            available = sorted(p.name.removesuffix(".nii.gz") for p in self.prediction_dir(pid).glob("*.nii.gz"))
            raise NotFoundError("output", f"prediction {pid} has no output {name!r}; available: {available}")
        return path

    # -- corrections ----------------------------------------------------------------------------
    def correction_path(self, cid: str) -> Path:
        return safe_path(self.root / "corrections", check_id(cid, "correction id")).with_suffix(".nii.gz")

    def write_correction(self, cid: str, label: Volume) -> None:
        """Atomically write a corrected label map (fsync'd before the ledger row is inserted)."""
        data = nifti_bytes(label, dtype=np.uint8)
        self.ensure_free(len(data))
        atomic_write_bytes(self.correction_path(cid), data, mode=PRIVATE_FILE)

    def correction(self, cid: str) -> Volume:
        img = volume_from_bytes(self.correction_path(cid).read_bytes(), f"correction {cid}")
        return Volume(check_label_array(np.asanyarray(img.dataobj), f"correction {cid}"), img.affine)

    def reviewed_path(self, cid: str) -> Path:
        """The reviewed mask of a correction that has one (``corrections/<id>.reviewed.nii.gz``)."""
        return self.correction_path(cid).with_name(f"{cid}.reviewed.nii.gz")

    def write_reviewed(self, cid: str, reviewed: Volume) -> None:
        """Atomically write a correction's reviewed mask (0/1 uint8; fsync'd before the ledger row names it)."""
        data = nifti_bytes(Volume(np.asarray(reviewed.array, dtype=np.uint8), reviewed.affine), dtype=np.uint8)
        self.ensure_free(len(data))
        atomic_write_bytes(self.reviewed_path(cid), data, mode=PRIVATE_FILE)

    def reviewed(self, cid: str) -> Volume:
        """A correction's reviewed mask as bool (``NotFoundError`` if its file is gone)."""
        path = self.reviewed_path(cid)
        if not path.is_file():
            raise NotFoundError("correction", f"correction {cid} has a reviewed mask, but {path} is missing")
        img = volume_from_bytes(path.read_bytes(), f"reviewed mask of {cid}")
        return Volume(np.asanyarray(img.dataobj) > 0, img.affine)

    # -- model versions -------------------------------------------------------------------------
    def model_dir(self, name: str, version: str) -> Path:
        check_id(name, "model", NAME_PATTERN)
        check_id(version, "version", VERSION_PATTERN)
        return safe_path(self.root / "models", name, version)

    def next_version(self, name: str) -> str:
        """``v<N+1>`` after the highest version in the ledger *or* on disk (a crash may leave a folder)."""
        used = [int(v.version[1:]) for v in self.ledger.versions(name)]
        folder = safe_path(self.root / "models", check_id(name, "model", NAME_PATTERN))
        if folder.is_dir():
            used += [int(p.name[1:]) for p in folder.iterdir() if re.fullmatch(r"v\d+", p.name)]
        return f"v{max(used, default=0) + 1}"

    def add_model_version(
        self,
        name: str,
        source: Path,
        parent: str | None = None,
        metrics: dict | None = None,
        move: bool = False,
        job: tuple[str, dict] | None = None,
        actor: str = "",
    ) -> ModelVersion:
        """Register the model folder ``source`` as the next version of ``name`` (copied, or moved).

        The first version of a model becomes its serving version; later ones only by promotion. The
        card's member-check warnings, if any, are kept in the version's ``metrics["member_warnings"]``.
        With ``job=(id, result)`` the job succeeds in the same transaction, its result completed with
        ``version`` and the metrics; a job cancelled meanwhile leaves no version and no folder.
        """
        from napari_uqseg.engine.model_folder import read_card  # engine import kept out of image-only paths

        card = read_card(source)
        version = self.next_version(name)
        target = self.model_dir(name, version)
        target.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR)
        staging = source
        self.ensure_free(0 if move else tree_size(source))
        if not move:
            staging = target.with_name(f".{version}.staging")
            shutil.rmtree(staging, ignore_errors=True)
            shutil.copytree(source, staging)
        make_private(staging)
        fsync_tree(staging)  # every file and folder on disk before the rename and the ledger row
        replace_durably(staging, target)
        metrics = dict(metrics or {})
        if card.member_warnings:  # a sample that lost a class: every client sees it with the version
            metrics["member_warnings"] = card.member_warnings
        record = ModelVersion(version, card.method, time.strftime("%Y-%m-%dT%H:%M:%S%z"), parent, metrics)
        job_done = None if job is None else (job[0], {**job[1], "version": version, **metrics})
        try:
            self.ledger.add_version(name, record, job=job_done, actor=actor)
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)  # no row names it: do not leave a stray version folder
            raise
        return record

    def labels_of(self, name: str, version: str) -> dict[str, str]:
        from napari_uqseg.engine.model_folder import read_card

        return dict(read_card(self.model_dir(name, version)).labels)

    # -- jobs and datasets ----------------------------------------------------------------------
    def job_dir(self, jid: str) -> Path:
        return safe_path(self.root / "jobs", check_id(jid, "job id"))

    def dataset_dir(self, name: str) -> Path:
        path = safe_path(self.root / "datasets", check_id(name, "dataset", NAME_PATTERN))
        if not path.is_dir():
            known = sorted(p.name for p in (self.root / "datasets").iterdir() if p.is_dir())
            raise NotFoundError("dataset", f"no dataset {name!r} in the server's datasets folder; known: {known}")
        return path
