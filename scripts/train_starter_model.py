"""Train the starter model shipped in ``napari_uqseg/resources/starter_brain`` (see its MODEL_CARD.md).

Data: the MNI152 template and tissue maps bundled in nilearn's wheel (no download), as written by
``napari_uqseg.core.sample_data.brain_dataset`` at 2 mm: deformed, intensity-augmented copies of the
template. Method: MC-Dropout on a small U-Net, one CPU thread. Afterwards the model predicts the
held-back scan (its own deformation plus bias field, contrast and resolution changes) and the measured
figures go into the card.

    OMP_NUM_THREADS=1 python scripts/train_starter_model.py [--out napari_uqseg/resources/starter_brain]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from napari_uqseg.cli.progress_bar import progress_bar
from napari_uqseg.core.sample_data import brain_dataset, write_heldout
from napari_uqseg.engine.make_model import train
from napari_uqseg.engine.model_folder import load_model, read_card, save_model
from napari_uqseg.engine.starter import (
    STARTER_CONFIG,
    STARTER_DATA,
    STARTER_METHOD,
    measure_heldout,
    store_half_precision,
    update_card_training,
    write_model_card,
)

COMMAND = "OMP_NUM_THREADS=1 python scripts/train_starter_model.py"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="napari_uqseg/resources/starter_brain")
    parser.add_argument("--iterations", type=int, default=STARTER_CONFIG["train"]["iterations"])
    parser.add_argument("--measure-only", action="store_true", help="re-measure the model at --out, no training")
    args = parser.parse_args(argv)
    if args.measure_only:
        return remeasure(Path(args.out))
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = {**STARTER_CONFIG, "train": {**STARTER_CONFIG["train"], "iterations": args.iterations}}
    out = Path(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        data, heldout = brain_dataset(Path(tmp) / "data", **STARTER_DATA)
        start = time.perf_counter()
        with progress_bar(f"train {STARTER_METHOD}") as progress:
            model = train(STARTER_METHOD, data, Path(tmp) / "model", config, progress=progress)
        seconds = time.perf_counter() - start
        card = read_card(model)
        training = {**card.training, "data": {**card.training["data"], "dir": "nilearn MNI152 (brain_dataset, 2 mm)"}}
        default = STARTER_CONFIG["train"]["iterations"]
        training["command"] = COMMAND + (f" --iterations {args.iterations}" if args.iterations != default else "")
        training["train_seconds_one_thread"] = round(seconds, 1)
        training["load_average"] = round(os.getloadavg()[0], 1)
        save_model(load_model(model), out, card.labels, training)
        store_half_precision(out)  # the figures below are measured on the shipped float16 weights
        figures = measure_heldout(out, heldout, heldout.with_name("heldout_label.nii.gz"))
    update_card_training(out, heldout=figures)
    write_model_card(out)
    print(json.dumps(figures, indent=1))
    print(f"trained in {seconds:.0f} s -> {out}")
    return 0


def remeasure(model: Path) -> int:
    """Score the shipped model again on a fresh held-back scan and rewrite its card (weights untouched)."""
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        heldout = write_heldout(Path(tmp) / "data")
        figures = measure_heldout(model, heldout, heldout.with_name("heldout_label.nii.gz"))
    update_card_training(model, heldout=figures)
    write_model_card(model)
    print(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
