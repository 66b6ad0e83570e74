"""Would 1 - mean pairwise Dice between samples rank failed cases? A check before building it (docs/loop.md).

The engine streams the samples' mean and spread, not per-sample masks, so this script runs the samples
itself: MONAI's Gaussian sliding window over a predictor that stacks every sample's probabilities (Masksembles:
one pass per mask; MC-Dropout: ``samples`` passes with dropout on), the argmax of each sample, the foreground
Dice of every pair of samples, and Spearman(1 - mean pairwise Dice, 1 - Dice) over the validation and test
cases of the per-model JSON that ``uqseg loop methods`` writes.

Usage: python scripts/case_score_pairwise_dice.py MODEL_DIR OUT/<method>.json DATA_DIR
"""

from __future__ import annotations

import argparse
import itertools
from functools import partial

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from napari_uqseg.core.json_files import read_json
from napari_uqseg.core.metrics import dice_per_class
from napari_uqseg.core.nifti_io import load_image
from napari_uqseg.core.ranking_metrics import spearman
from napari_uqseg.engine.data import case_pairs, normalise
from napari_uqseg.engine.methods.base import UQMethod
from napari_uqseg.engine.methods.mc_dropout import enable_dropout_only
from napari_uqseg.engine.model_folder import load_model
from napari_uqseg.engine.statistics import tile_samples


def stacked_samples(method: UQMethod, x: torch.Tensor) -> torch.Tensor:
    """``(B, 1, *P)`` windows -> ``(B, S * C, *P)``: every sample's class probabilities, sample-major."""
    net = method.nets["net"]
    with torch.no_grad():
        if method.name == "masksembles":
            n = method.options.n_masks
            prob = method.probabilities(net(tile_samples(x, n)))
        elif method.name == "mc_dropout":
            n = method.options.samples
            enable_dropout_only(net)
            prob = torch.cat([method.probabilities(net(x)) for _ in range(n)])
        else:
            raise SystemExit(f"{method.name}: only masksembles and mc_dropout are supported")
    b = x.shape[0]
    return prob.view(n, b, *prob.shape[1:]).transpose(0, 1).reshape(b, -1, *prob.shape[2:])


def pairwise_dice_score(method: UQMethod, image: np.ndarray) -> float:
    """1 - mean over sample pairs of the mean foreground Dice between their argmax masks."""
    x = torch.from_numpy(normalise(image, method.normalisation)).float()[None, None]
    out = sliding_window_inference(
        x, method.patch_size, 1, partial(stacked_samples, method), overlap=0.25, mode="gaussian", cval=float(x.min())
    )[0].numpy()
    classes = method.net_config.num_classes
    masks = out.reshape(-1, classes, *out.shape[1:]).argmax(axis=1)
    pairs = [dice_per_class(a, b, classes).mean() for a, b in itertools.combinations(masks, 2)]
    return 1.0 - float(np.mean(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("per_model", help="<method>.json written by uqseg loop methods (cases and their Dice)")
    parser.add_argument("data")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)  # MC-Dropout's draws: the same figures on every run
    method = load_model(args.model, "cpu")
    method.eval()
    per_model = read_json(args.per_model)
    images = {case_id: image for case_id, image, _ in case_pairs(args.data)}
    for split in ("val", "test"):
        cases = per_model[split]
        scores = [pairwise_dice_score(method, load_image(images[c]).array) for c in cases]
        truth = [1.0 - cases[c]["dice"] for c in cases]
        print(f"{method.name} {split} ({len(cases)} cases): Spearman {spearman(np.array(scores), np.array(truth)):.2f}")


if __name__ == "__main__":
    main()
