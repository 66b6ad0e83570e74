"""``uqseg loop``: the review loop end to end through a real server, with a simulated reader.

A ``uqseg serve`` subprocess serves the model. For each arm (how the reader works) the reader takes the site's
cases k at a time: the served version predicts each one, the reader reviews regions in the arm's order
(``core.review_effort``) within a budget of ROI voxels and replaces the prediction by the ground truth there,
and submits the correction with the voxels it reviewed (a partial reader's regions; none for the whole case,
which counts as wholly reviewed), so that the fine-tune trains a partial correction on its reviewed voxels and
the confident rest of its label (``FinetuneOptions.loss_mask``: ``"confident"``, ``"reviewed"`` or ``"all"``); after k
cases the server fine-tunes (a job) and the next cases are predicted by the new version. Every version is
scored on the site's unseen cases and on the in-distribution test cases.
Arms (partial corrections at the same voxel budget): ``uncertainty`` (the queue's regions in its order),
``random`` and ``oracle`` (same-sized pieces of the ROI in random order / by true error voxels); and ``whole``
(the whole case corrected).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from napari_uqseg.client.backend import Backend, PredictionResult
from napari_uqseg.core.errors import InputError
from napari_uqseg.core.metrics import mean_dice
from napari_uqseg.core.nifti_io import float_map_from_bytes, load_image, load_label
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.review import foreground_roi, region_label_image
from napari_uqseg.core.review_effort import corrected_label, region_order, regions_within_budget, roi_pieces
from napari_uqseg.core.site import SIMULATED_SITE, apply_site
from napari_uqseg.core.volume import Volume

ARMS = ("uncertainty", "random", "oracle", "whole")
MODEL = "loop"
#: what a round keeps of its fine-tune job's result
JOB_FIGURES = ("recommendation", "regression", "seconds", "finetuned_on", "loss_mask")


@dataclass
class LoopConfig:
    """Size of a loop run.

    Attributes
    ----------
    k : int
        Cases corrected between two fine-tunes.
    rounds : int
        Fine-tunes per arm (``k * rounds`` site cases are corrected).
    budget : float
        Reviewed share of each case's ROI voxels for the partial arms.
    arms : tuple of str
        Arms to run (:data:`ARMS`).
    finetune : dict
        ``FinetuneOptions`` sent with every fine-tune job.
    site : tuple of (str, int)
        The simulated site (``core.site``).
    seed : int
        Seed of the random order.
    baseline : bool
        Also score v1 itself (off for a run that only adds arms to an earlier one).
    """

    k: int = 5
    rounds: int = 1
    budget: float = 0.10
    arms: tuple[str, ...] = ARMS
    finetune: dict[str, Any] = field(default_factory=lambda: {"iterations": 40, "held_back_fraction": 0.0})
    site: tuple[tuple[str, int], ...] = SIMULATED_SITE
    seed: int = 0
    baseline: bool = True

    def __post_init__(self) -> None:
        unknown = set(self.arms) - set(ARMS)
        if unknown or self.k < 1 or self.rounds < 1 or not 0 < self.budget <= 1:
            raise InputError("loop", f"need arms among {ARMS}, k >= 1, rounds >= 1, 0 < budget <= 1")


@dataclass
class SiteCase:
    """One case: raw image as the site (or the original scanner) acquired it, and its ground truth."""

    case_id: str
    image: Volume
    truth: np.ndarray


def load_split(
    data_dir: Path, ids: list[str], shifted: bool, site: tuple[tuple[str, int], ...], num_classes: int
) -> list[SiteCase]:
    """Cases ``ids`` of an MSD folder, each through the simulated site when ``shifted``."""
    meta = json.loads((data_dir / "dataset.json").read_text())
    paths = {Path(e["image"]).name.removesuffix(".gz").removesuffix(".nii"): e for e in meta["training"]}
    out = []
    for case_id in ids:
        image = load_image(data_dir / paths[case_id]["image"])
        truth = load_label(data_dir / paths[case_id]["label"], image, num_classes).array
        if shifted:
            spacing = np.sqrt((image.affine[:3, :3] ** 2).sum(axis=0))
            image = Volume(apply_site(image.array, case_id, site, spacing), image.affine)
        out.append(SiteCase(case_id, image, truth))
    return out


def split_site(test_ids: list[str], corrected: int) -> tuple[list[str], list[str]]:
    """``(cases to correct, unseen cases)``: the first ``corrected`` sorted ids; an id whose scan partner
    (``2k-1``/``2k``, same scan) is corrected is left out of the unseen cases."""
    ids = sorted(test_ids)
    if corrected >= len(ids):
        raise InputError("loop", f"{corrected} cases to correct leave no unseen test case (have {len(ids)})")
    chosen = ids[:corrected]
    groups = {_pair(c) for c in chosen}
    return chosen, [c for c in ids[corrected:] if _pair(c) not in groups]


def _pair(case_id: str) -> int:
    digits = "".join(ch for ch in case_id if ch.isdigit())
    return (int(digits) + 1) // 2 if digits else hash(case_id)


def score_version(backend: Backend, version: str, cases: list[SiteCase], num_classes: int) -> dict[str, float]:
    """Dice of the version's prediction per case, through the server."""
    return {
        c.case_id: mean_dice(backend.predict(c.image, MODEL, version).prediction.mask.array, c.truth, num_classes)
        for c in cases
    }


def _exact_outputs(backend: Backend, result: PredictionResult) -> tuple[np.ndarray, np.ndarray]:
    """float32 review map and probabilities ``(C, *S)`` of a prediction made with ``float32`` outputs."""
    key = result.review.map_name
    u = float_map_from_bytes(backend.output(result.id, key, "float32"), key).array
    probs = float_map_from_bytes(backend.output(result.id, "probabilities", "float32"), "probabilities").array
    return u, np.ascontiguousarray(np.moveaxis(probs, -1, 0))


def read_case(backend: Backend, version: str, case: SiteCase, arm: str, config: LoopConfig) -> dict[str, Any]:
    """Predict, review and correct one case as the arm's reader; submit the correction. Returns its record."""
    result = backend.predict(case.image, MODEL, version, {"float32": True})
    mask = result.prediction.mask.array
    roi = foreground_roi(mask)
    errors = (mask != case.truth) & roi
    reviewed_mask = None  # the whole case reviewed
    if arm == "whole":
        label, reviewed, chosen = case.truth.astype(np.uint8), int(roi.sum()), 0
    else:
        u, probs = _exact_outputs(backend, result)
        review = result.review
        regions = region_label_image(
            u, mask, probs, threshold=review.threshold, max_region_voxels=review.max_region_voxels
        )
        if int(regions.max()) != len(review.regions):  # the reader must walk exactly the queue the viewer shows
            raise RuntimeError(f"{case.case_id}: {int(regions.max())} regions here, {len(review.regions)} in the queue")
        if arm != "uncertainty":  # readers without the uncertainty review same-sized pieces of the ROI
            regions = roi_pieces(roi, review.max_region_voxels)
        order = region_order(regions, errors, arm, config.seed)
        picked = regions_within_budget(regions, order, config.budget * int(roi.sum()))
        label = corrected_label(mask, case.truth.astype(np.uint8), regions, picked)
        reviewed_mask = np.isin(regions, picked)  # the voxels the reader checked and fixed
        reviewed, chosen = int(reviewed_mask.sum()), int(picked.size)
        if arm == "uncertainty":
            for region_id in picked.tolist():
                review.set_state(int(region_id), "done")
    fixed = int(((label == case.truth) & (mask != case.truth)).sum())
    if reviewed_mask is not None and not reviewed_mask.any():
        raise RuntimeError(f"{case.case_id}: no region fits a budget of {config.budget:.0%} of the ROI voxels")
    sent = None if reviewed_mask is None else Volume(reviewed_mask, case.image.affine)
    cid = backend.submit_correction(result.id, Volume(label, case.image.affine), result.review, reviewed=sent)
    return {
        "case": case.case_id,
        "correction": cid,
        "regions": chosen,
        "reviewed_voxels": reviewed,
        "reviewed_mask_sent": sent is not None,
        "roi_voxels": int(roi.sum()),
        "errors": int((mask != case.truth).sum()),
        "errors_fixed": fixed,
    }


def run_arm(
    backend: Backend,
    arm: str,
    to_correct: list[SiteCase],
    evaluation: dict[str, list[SiteCase]],
    config: LoopConfig,
    num_classes: int,
    progress: Progress = no_progress,
) -> list[dict[str, Any]]:
    """One arm: rounds of k corrections, each followed by a fine-tune job and scoring of the new version."""
    version, rounds = "v1", []
    for r in range(config.rounds):
        batch = to_correct[r * config.k : (r + 1) * config.k]
        progress(r, config.rounds, f"{arm}: round {r + 1} reading {len(batch)} cases with {version}")
        reads = [read_case(backend, version, case, arm, config) for case in batch]
        params = {"version": version, "corrections": [x["correction"] for x in reads], "options": config.finetune}
        job = backend.start_job("finetune", MODEL, params)
        status = backend.wait_job(job.id, timeout=3600)
        if status.state != "succeeded":
            raise RuntimeError(f"fine-tune job {job.id} {status.state}: {status.error}")
        version = status.result["version"]
        scores = {name: score_version(backend, version, cases, num_classes) for name, cases in evaluation.items()}
        rounds.append(
            {
                "round": r + 1,
                "version": version,
                "corrected_cases": (r + 1) * config.k,
                "reads": reads,
                "job": {k: status.result.get(k) for k in JOB_FIGURES},
                "dice": {name: float(np.mean(list(s.values()))) for name, s in scores.items()},
                "per_case": scores,
            }
        )
    return rounds


def run_loop(
    model_dir: str | Path,
    data_dir: str | Path,
    test_ids: list[str],
    work_dir: str | Path,
    config: LoopConfig | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Start a server on ``work_dir`` serving ``model_dir`` and run every arm; returns (and writes) ``loop.json``."""
    from napari_uqseg.client.remote import RemoteBackend
    from napari_uqseg.server.launcher import start_server

    config = config or LoopConfig()
    data_dir, work_dir = Path(data_dir), Path(work_dir)
    num_classes = 1 + max(int(k) for k in json.loads((data_dir / "dataset.json").read_text())["labels"])
    corrected_ids, unseen_ids = split_site(test_ids, config.k * config.rounds)
    to_correct = load_split(data_dir, corrected_ids, True, config.site, num_classes)
    evaluation = {
        "site_unseen": load_split(data_dir, unseen_ids, True, config.site, num_classes),
        "in_distribution": load_split(data_dir, unseen_ids, False, config.site, num_classes),
    }
    result: dict[str, Any] = {"config": asdict(config), "corrected": corrected_ids, "unseen": unseen_ids, "arms": {}}
    start = time.perf_counter()
    for arm in config.arms:  # a fresh server (and ledger) per arm: every arm starts from the same version v1
        (work_dir / arm).mkdir(parents=True, exist_ok=True)
        server = start_server(work_dir / arm / "data", {MODEL: Path(model_dir)})
        try:
            with RemoteBackend(server.url, server.token) as backend:
                if config.baseline and "baseline" not in result:
                    scores = {n: score_version(backend, "v1", c, num_classes) for n, c in evaluation.items()}
                    result["baseline"] = {n: float(np.mean(list(s.values()))) for n, s in scores.items()}
                    result["baseline_per_case"] = scores
                result["arms"][arm] = run_arm(backend, arm, to_correct, evaluation, config, num_classes, progress)
        finally:
            server.stop()
        result["seconds"] = time.perf_counter() - start
        (work_dir / "loop.json").write_text(json.dumps(result, indent=1))
    return result
