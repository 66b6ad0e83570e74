"""Fine-tune a trained model on corrected volumes into a new model folder, with honest before/after figures.

The loaded model's own ``fit`` (its paper recipe, through ``fit_network``) continues from the trained
weights with a shorter schedule and a lower learning rate. A fixed share of the corrections is held back
and never trained on (``core.finetune_verdict.split_held_back``): the before/after figures come from it.
Patches of the original training cases are replayed in every batch (``engine.replay``), the original
validation cases are scored before and after (``regression``), and the result carries a promote / don't
recommendation. ``work_dir`` holds ``fit_network``'s atomic checkpoints, so a killed fine-tune resumes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from napari_uqseg.core.errors import InputError
from napari_uqseg.core.finetune_verdict import (
    FINETUNE_ITERATIONS,
    HELD_BACK_FRACTION,
    MAX_REGRESSION,
    recommend,
    split_held_back,
)
from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.core.options import look_up_option, options_from_dict
from napari_uqseg.core.progress import Progress, no_progress
from napari_uqseg.core.recalibration import MIN_CALIBRATION_CASES
from napari_uqseg.core.records import Prediction
from napari_uqseg.core.volume import Volume
from napari_uqseg.engine.data import IGNORE_LABEL, Case, normalise
from napari_uqseg.engine.finetune_calibration import recalibrate, store_entries
from napari_uqseg.engine.finetune_data import replay_cases, training_record, validation_cases
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.member_check import check_members
from napari_uqseg.engine.methods.base import TrainingData, UQMethod
from napari_uqseg.engine.model_folder import load_model, read_card, save_model
from napari_uqseg.engine.training import TrainConfig

#: values of ``FinetuneOptions.loss_mask``
LOSS_MASKS = ("all", "reviewed", "confident")


@dataclass
class CorrectedCase:
    """One corrected volume: raw image ``(I, J, K)`` and the user's label map on the same grid.

    ``reviewed`` (bool, same grid) marks the voxels a person reviewed; ``None``: the whole case was.
    """

    case_id: str
    image: Volume
    label: Volume
    reviewed: Volume | None = None


@dataclass
class FinetuneOptions:
    """Fine-tuning schedule (the rest of the recipe comes from the model's training config).

    Attributes
    ----------
    iterations : int
        Optimisation steps per network.
    lr_factor : float
        Learning rate = training learning rate x ``lr_factor`` (small: keep what the model knew).
    checkpoint_every : int
        Steps between resumable checkpoints.
    batch_size : int or None
        Patches per step (``None``: as in training).
    time_budget_s : float or None
        Stop each network after this many seconds.
    held_back_fraction : float
        Share of corrections never trained on (fixed per correction id), in ``[0, 1)``.
    replay_fraction : float
        Share of each batch's patches drawn from the original training cases, in ``[0, 1)``.
    replay_cases : int
        Original training cases replayed (evenly spread over the card's list; 0: all).
    regression_cases : int
        Original validation cases scored before and after (0: all).
    max_regression : float
        Largest validation mean-Dice drop a version recommended for promotion may show.
    recalibrate : bool
        Refit the new version's volume intervals and conformal masks (``engine.finetune_calibration``).
    min_calibration_cases : int
        Fewest held-back corrections + validation cases to recalibrate on (fewer: no calibration).
    loss_mask : str
        What a partial correction (one with a reviewed mask) is trained on. ``"confident"`` (default): its
        reviewed voxels plus the unreviewed ones where the model being fine-tuned is confident (largest class
        probability >= ``pseudo_label_confidence``), whose unchecked labels are likely right; the unreviewed
        uncertain voxels, where the model's remaining errors are, are left out. ``"all"``: every voxel, the
        unchecked prediction included; ``"reviewed"``: the reviewed voxels only. Measured on the hippocampus
        loop in docs/loop.md. Corrections without a mask and replayed training cases are always trained on
        every voxel.
    seed : int or None
        Seed of the fine-tune's patch sampling and augmentation (``None``: the model's training seed); another
        seed repeats a fine-tune to see how much of a difference is chance.
    pseudo_label_confidence : float
        The ``"confident"`` mask's cut on the largest class probability, in ``(0, 1]`` (0.99: the lowest of
        0.6-0.99 below which 80 % of the model's errors on its validation cases under the simulated site lie,
        for each model measured; docs/loop.md).
    """

    iterations: int = FINETUNE_ITERATIONS
    lr_factor: float = 0.1
    checkpoint_every: int = 10
    batch_size: int | None = None
    time_budget_s: float | None = None
    held_back_fraction: float = HELD_BACK_FRACTION
    replay_fraction: float = 0.5
    replay_cases: int = 16
    regression_cases: int = 0
    max_regression: float = MAX_REGRESSION
    recalibrate: bool = True
    min_calibration_cases: int = MIN_CALIBRATION_CASES
    loss_mask: str = "confident"
    pseudo_label_confidence: float = 0.99
    seed: int | None = None

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FinetuneOptions:
        opts = options_from_dict(cls, d, "finetune params")
        if not 1 <= opts.iterations <= 1_000_000 or opts.checkpoint_every < 1 or not 0 < opts.lr_factor <= 10:
            raise InputError(
                "finetune params", "need 1 <= iterations <= 1e6, checkpoint_every >= 1, 0 < lr_factor <= 10"
            )
        if not (0 <= opts.held_back_fraction < 1 and 0 <= opts.replay_fraction < 1 and opts.max_regression >= 0):
            raise InputError("finetune params", "need 0 <= held_back_fraction < 1, 0 <= replay_fraction < 1")
        if opts.replay_cases < 0 or opts.regression_cases < 0:
            raise InputError("finetune params", "replay_cases and regression_cases must be >= 0")
        if not isinstance(opts.recalibrate, bool) or opts.min_calibration_cases < 2:
            raise InputError("finetune params", "recalibrate must be true or false, min_calibration_cases >= 2")
        look_up_option("finetune params", opts.loss_mask, LOSS_MASKS, "loss_mask")
        if not 0 < opts.pseudo_label_confidence <= 1:
            raise InputError("finetune params", "pseudo_label_confidence must be in (0, 1]")
        if opts.seed is not None and (isinstance(opts.seed, bool) or not isinstance(opts.seed, int)):
            raise InputError("finetune params", f"seed must be an integer or null, got {opts.seed!r}")
        return opts


def evaluate_cases(
    method: UQMethod,
    cases: list[CorrectedCase],
    progress: Progress = no_progress,
    on_prediction: Callable[[CorrectedCase, Prediction], None] | None = None,
) -> dict[str, Any]:
    """Foreground Dice of ``method``'s prediction against each corrected label.

    ``on_prediction(case, prediction)`` sees each prediction (so a caller needing it does not predict again).

    Returns
    -------
    dict
        ``{"dice": {case_id: mean foreground Dice}, "dice_per_class": {case_id: [..]}, "mean_dice": float}``.
    """
    num_classes = method.net_config.num_classes
    per_case, per_class = {}, {}
    for i, case in enumerate(cases):
        progress(i, len(cases), f"evaluating {case.case_id}")
        prediction = predict_volume(method, case.image, output_dtype="float32")
        if on_prediction is not None:
            on_prediction(case, prediction)
        dice = dice_per_class(prediction.mask.array, case.label.array, num_classes)
        per_case[case.case_id] = float(dice.mean())
        per_class[case.case_id] = [float(d) for d in dice]
    mean = float(sum(per_case.values()) / len(per_case)) if per_case else float("nan")
    return {"dice": per_case, "dice_per_class": per_class, "mean_dice": mean}


def resume_point(work_dir: Path) -> int:
    """Steps already done by an interrupted run in ``work_dir`` (0 if none)."""
    steps = 0
    for path in sorted(work_dir.glob("*.resume.pt")):
        saved = torch.load(path, weights_only=True)
        steps = max(steps, int(saved["history"]["iterations"]))
    return steps


def finetune_config(model_dir: Path, options: FinetuneOptions) -> TrainConfig:
    """The model's training config with the fine-tuning schedule applied."""
    card = read_card(model_dir)
    base = dict(card.training.get("config", {}).get("train", {}))
    base["patch_size"] = list(card.patch_size)
    cfg = TrainConfig.from_dict(base)
    changes = {
        "iterations": options.iterations,
        "lr": cfg.lr * options.lr_factor,
        "checkpoint_every": options.checkpoint_every,
        "time_budget_s": options.time_budget_s,
        "val_fraction": 0.0,
        "batch_size": options.batch_size or cfg.batch_size,
        "seed": cfg.seed if options.seed is None else options.seed,
    }
    return TrainConfig.from_dict({**cfg.to_dict(), **changes})


def _training_cases(method: UQMethod, cases: list[CorrectedCase]) -> list[Case]:
    """Corrections checked against the model's classes and normalised for training."""
    num_classes = method.net_config.num_classes
    out = []
    for case in cases:
        if case.label.shape != case.image.shape:
            raise InputError(
                case.case_id, f"label shape {case.label.shape} differs from image shape {case.image.shape}"
            )
        if int(case.label.array.max()) >= num_classes:
            raise InputError(
                case.case_id, f"label {int(case.label.array.max())} is outside the model's {num_classes} classes"
            )
        image = normalise(case.image.array, method.normalisation)
        out.append(Case(case.case_id, image, case.label.array.astype("uint8"), case.image.affine))
    return out


def ignore_outside(case: Case, kept: np.ndarray) -> Case:
    """``case`` with its voxels outside ``kept`` (bool, the label's shape) labelled ``IGNORE_LABEL``."""
    kept = np.asarray(kept, dtype=bool)
    if kept.shape != case.label.shape:
        raise InputError(case.case_id, f"reviewed mask shape {kept.shape} differs from label {case.label.shape}")
    label = np.where(kept, case.label, np.uint8(IGNORE_LABEL)).astype(np.uint8)
    return Case(case.case_id, case.image, label, case.affine, case.image_path, case.label_path)


def confident_voxels(prediction: Prediction, cut: float) -> np.ndarray:
    """Bool ``(I, J, K)``: voxels where the prediction's largest mean class probability is >= ``cut``."""
    return prediction.probabilities.array.max(axis=0) >= cut


def _loss_masked(
    train_cases: list[Case], cases: list[CorrectedCase], mode: str, confident: dict[str, np.ndarray]
) -> tuple[list[Case], list[str]]:
    """The cases to fit (a partial correction's label cut to what ``mode`` trusts) and the ids so cut.

    ``"reviewed"``: the reviewed voxels; ``"confident"``: those plus ``confident[case_id]`` (bool, the
    parent's :func:`confident_voxels` on the correction's image).
    """
    partial = {c.case_id: c for c in cases if c.reviewed is not None and mode != "all"}
    fitted = []
    for case in train_cases:
        if case.case_id in partial:
            kept = np.asarray(partial[case.case_id].reviewed.array, dtype=bool)
            if mode == "confident":
                kept = kept | confident[case.case_id]
            case = ignore_outside(case, kept)
        fitted.append(case)
    return fitted, [c.case_id for c in train_cases if c.case_id in partial]


def _scores(
    method: UQMethod,
    groups: dict[str, list[CorrectedCase]],
    on_prediction: Callable[[CorrectedCase, Prediction], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """:func:`evaluate_cases` per named group (``{}`` for an empty group)."""
    return {
        name: evaluate_cases(method, cases, on_prediction=on_prediction) if cases else {}
        for name, cases in groups.items()
    }


def _before_after_report(
    before: dict[str, dict],
    after: dict[str, dict],
    val_cases: list[CorrectedCase],
    val_note: str | None,
    options: FinetuneOptions,
) -> dict[str, Any]:
    """Held-back and trained-on scores before and after, the regression on validation cases and the verdict."""
    regression = {"before": before["val"], "after": after["val"], "cases": [c.case_id for c in val_cases]}
    if val_note:
        regression["note"] = val_note
    return {
        "before": before["held"],
        "after": after["held"],
        "trained_before": before["trained"],
        "trained_after": after["trained"],
        "regression": regression,
        "recommendation": recommend(
            {"before": before["held"], "after": after["held"]}, regression, options.max_regression
        ),
    }


def finetune(
    model_dir: str | Path,
    cases: list[CorrectedCase],
    out_dir: str | Path,
    work_dir: str | Path,
    options: FinetuneOptions | None = None,
    device: str = "cpu",
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Fine-tune the model in ``model_dir`` on ``cases`` and save the result as a new folder ``out_dir``.

    Parameters
    ----------
    model_dir : Path
        Trained model folder (left untouched).
    cases : list of CorrectedCase
        Corrected volumes; each label must be on its image's grid. The held-back share is not trained on.
    out_dir : Path
        New model folder, written atomically at the end.
    work_dir : Path
        Resumable checkpoints; calling again after a crash continues from the last one.
    device : str
        Resolved torch device string.

    Returns
    -------
    dict
        ``before``/``after`` on the held-back corrections (see :func:`evaluate_cases`; ``{}`` when none was
        held back), ``trained_before``/``trained_after`` on the corrections trained on (a training score),
        ``regression`` ``{"before", "after", "cases"}`` on the original validation cases, ``recommendation``
        (``core.finetune_verdict.recommend``), ``held_back`` and ``trained_on`` ids, ``replay`` (cases and
        fraction, or why none), ``uq_calibration`` (``core.recalibration.recalibration_note``: refitted on
        held-back + validation cases, or why not), ``loss_mask`` (``mode`` and ``partial``: the ids
        trained on part of their label), ``history``, ``resumed_from_step``, ``seconds``.
    """
    if not cases:
        raise InputError("corrections", "a fine-tune needs at least one corrected case")
    options = options or FinetuneOptions()
    model_dir, work_dir = Path(model_dir), Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    method = load_model(model_dir, device)
    card = read_card(model_dir)
    train_ids, held_ids = split_held_back([c.case_id for c in cases], options.held_back_fraction)
    trained = [c for c in cases if c.case_id in set(train_ids)]
    held = [c for c in cases if c.case_id in set(held_ids)]
    train_cases = _training_cases(method, cases)
    train_cases = [c for c in train_cases if c.case_id in set(train_ids)]
    record = training_record(card.training)
    replay, replay_note = replay_cases(
        record, options.replay_cases, method.normalisation, method.net_config.spatial_dims
    )
    val, val_note = validation_cases(record, options.regression_cases)
    val_cases = [CorrectedCase(*v) for v in val]
    start = time.perf_counter()
    groups = {"held": held, "trained": trained, "val": val_cases}
    confident: dict[str, np.ndarray] = {}

    def keep_confident(case: CorrectedCase, prediction: Prediction) -> None:  # the parent's pass, reused
        if case.reviewed is not None and options.loss_mask == "confident":
            confident[case.case_id] = confident_voxels(prediction, options.pseudo_label_confidence)

    before = _scores(method, groups, keep_confident)
    resumed_from = resume_point(work_dir)
    cfg = finetune_config(model_dir, options)
    fitted, masked = _loss_masked(train_cases, cases, options.loss_mask, confident)
    data = TrainingData(fitted, [], method.net_config.num_classes, replay, options.replay_fraction)
    history = method.fit(data, cfg, progress, work_dir)
    after = _scores(method, groups)
    report = _before_after_report(before, after, val_cases, val_note, options)
    whole = [c for c in held if c.reviewed is None]  # a partial correction is no ground truth to calibrate on
    entries, calibration = recalibrate(
        method, method.uq_calibration, whole, val_cases, options.min_calibration_cases, options.recalibrate, progress
    )
    report.update(
        held_back=held_ids,
        trained_on=train_ids,
        replay={"cases": [c.case_id for c in replay], "fraction": options.replay_fraction, "note": replay_note},
        uq_calibration=calibration,
        loss_mask={"mode": options.loss_mask, "partial": masked},
    )
    summary = {
        "config": {"train": cfg.to_dict(), "method": card.options},
        "data": record,
        "finetune": {"parent": str(model_dir), "cases": [c.case_id for c in cases], "options": options.__dict__},
        "history": history,
        **report,
    }
    if method.n_samples() > 1:  # no held-out cases here: a member that lost a class shows even on its training cases
        summary["member_check"] = check_members(method, train_cases, dict(card.labels))
    method.to("cpu")
    save_model(method, out_dir, dict(card.labels), summary)
    store_entries(out_dir, entries)  # after save_model, which replaces the whole folder
    return {**report, "history": history, "resumed_from_step": resumed_from, "seconds": time.perf_counter() - start}
