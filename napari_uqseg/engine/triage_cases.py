"""The cases of a triage run and the per-case work: predict, write as ``uqseg predict`` does, record the row.

A case is finished when its ``case.json`` exists: it is written atomically, after the prediction writer
(``engine.prediction_files.write_prediction``) has moved every output into place, so a killed run never leaves a case
that looks finished but is not.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.nifti_io import atomic_write_bytes, load_image
from napari_uqseg.core.predict_options import PredictOptions
from napari_uqseg.core.review_ranking import ReviewRanking
from napari_uqseg.core.worklist import CASE_RECORD, case_row

NIFTI_SUFFIXES = (".nii.gz", ".nii")


@dataclass(frozen=True)
class TriageCase:
    """One image to triage: its id (file name without the NIfTI suffix) and absolute path."""

    case: str
    image: str


def case_id(path: Path) -> str:
    """``hippocampus_001.nii.gz`` -> ``hippocampus_001``."""
    return path.name.removesuffix(".gz").removesuffix(".nii")


def _is_nifti(path: Path) -> bool:
    return path.is_file() and path.name.endswith(NIFTI_SUFFIXES) and not path.name.startswith(".")


def _dataset_images(folder: Path) -> list[Path]:
    meta = json.loads((folder / "dataset.json").read_text())
    entries = [e["image"] if isinstance(e, dict) else e for e in meta.get("training", []) + meta.get("test", [])]
    return [folder / str(e) for e in entries]


def _folder_images(folder: Path) -> list[Path]:
    if (folder / "dataset.json").is_file():
        return _dataset_images(folder)
    images = sorted(p for p in folder.iterdir() if _is_nifti(p))
    for sub in ("imagesTr", "imagesTs"):  # an MSD-layout folder without dataset.json
        if not images and (folder / sub).is_dir():
            images = sorted(p for p in (folder / sub).iterdir() if _is_nifti(p))
    return images


def _list_images(path: Path) -> list[Path]:
    lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
    return [(path.parent / line) if not Path(line).is_absolute() else Path(line) for line in lines if line]


def find_cases(data: str | Path) -> list[TriageCase]:
    """The images to triage from a folder or a list file.

    Parameters
    ----------
    data : str or Path
        A folder (MSD layout with ``dataset.json``: its training and test images; otherwise every
        ``.nii``/``.nii.gz`` in it, or in its ``imagesTr``/``imagesTs``), or a text file with one image
        path per line (relative paths are relative to the file).

    Raises
    ------
    InputError
        Nothing found, a listed image missing, or two images with one case id.
    """
    path = Path(data)
    if path.is_dir():
        images = _folder_images(path)
    elif path.is_file():
        images = _list_images(path)
    else:
        raise InputError(str(path), "--data must be a folder of NIfTI images or a file listing image paths")
    if not images:
        raise InputError(str(path), "no NIfTI images (.nii, .nii.gz) found")
    missing = [str(p) for p in images if not p.is_file()]
    if missing:
        raise InputError(str(path), f"{len(missing)} listed image(s) do not exist, e.g. {missing[0]}")
    cases = [TriageCase(case_id(p), str(p.resolve())) for p in images]
    seen: dict[str, str] = {}
    for c in cases:
        if c.case in seen:
            raise InputError(str(path), f"two images have case id {c.case!r}: {seen[c.case]} and {c.image}")
        seen[c.case] = c.image
    return cases


def record_path(out_dir: str | Path, case: str) -> Path:
    """The done marker (and row) of one case."""
    return Path(out_dir) / case / CASE_RECORD


def is_done(out_dir: str | Path, case: str) -> bool:
    return record_path(out_dir, case).is_file()


def read_record(out_dir: str | Path, case: str) -> dict[str, Any]:
    return json.loads(record_path(out_dir, case).read_text())


def remove_stale_staging(out_dir: Path, cases: list[TriageCase]) -> None:
    """Delete the staging folders a killed run left (``.<case>.*`` next to the case folders)."""
    names = {c.case for c in cases}
    for entry in out_dir.glob(".*"):
        stem = entry.name[1:].rsplit(".", 1)[0]
        if entry.is_dir() and stem in names:
            shutil.rmtree(entry, ignore_errors=True)


class CasePredictor:
    """Loads a model once and triages cases with it (the body of a pool worker and of a Ray actor).

    Parameters
    ----------
    model_dir : str
        Model folder written by ``uqseg train``.
    out_dir : str
        Triage output folder (each case gets ``<out_dir>/<case>/``).
    device : str
        ``cpu``, ``cuda`` or ``auto``.
    review_map : str or None
        Map that ranks the review queue; ``None``: the prediction writer's default.
    threads : int
        torch threads of this worker (0: torch's default).
    """

    def __init__(
        self, model_dir: str, out_dir: str, device: str = "cpu", review_map: str | None = None, threads: int = 1
    ) -> None:
        import torch

        from napari_uqseg.engine.device import resolve_device
        from napari_uqseg.engine.model_folder import load_model, read_card

        if threads:
            torch.set_num_threads(threads)
        self.method = load_model(model_dir, str(resolve_device(device)))
        self.labels = read_card(model_dir).labels
        self.out_dir = Path(out_dir)
        self.review_map = review_map

    def predict(self, case: TriageCase) -> dict[str, Any]:
        """Predict one case and write its outputs and ``case.json``; returns the row (or ``case`` + ``error``)."""
        try:
            return self._predict(case)
        except Exception as exc:  # noqa: BLE001  (one bad image must not stop a study: reported per case)
            return {"case": case.case, "error": f"{exc.__class__.__name__}: {exc}"}

    def _predict(self, case: TriageCase) -> dict[str, Any]:
        from napari_uqseg.engine.inference import predict_volume
        from napari_uqseg.engine.prediction_files import write_prediction

        image = load_image(case.image)
        prediction = predict_volume(self.method, image)
        written = write_prediction(prediction, self.out_dir / case.case, PredictOptions(review_map=self.review_map))
        ranking = ReviewRanking.from_dict(json.loads(written["review"].read_text()))
        row = case_row(
            case.case,
            case.image,
            case.case,
            ranking,
            prediction.mask.array,
            prediction.maps[ranking.map_name].array,
            prediction.affine,
            self.labels,
            list(prediction.maps),
            prediction.info.get("volumes"),
        )
        data = row.to_dict()
        atomic_write_bytes(record_path(self.out_dir, case.case), json.dumps(data, indent=1).encode())
        return data
