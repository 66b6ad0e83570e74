"""Per-mask Dice of a Masksembles model: does every sub-network segment every class?

Usage: python scripts/masksembles_members.py --model MODEL --data DIR --cases FILE [--out JSON]
Prints, per mask, the mean Dice of each foreground class over the cases, and the share of ground-truth
bounding-box voxels where exactly one mask disagrees with the other three. A sub-network that lost a class
shows as Dice 0 for it, and that class's voxels then sit at confidence ~(N-1)/N in the pooled prediction.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from napari_uqseg.core.metrics import roi_mask
from napari_uqseg.engine.api import read_case_list
from napari_uqseg.engine.data import load_cases
from napari_uqseg.engine.inference import blend_windows
from napari_uqseg.engine.layers.masksembles import Masksembles
from napari_uqseg.engine.store import load_model


def class_dice(pred: np.ndarray, label: np.ndarray, c: int) -> float:
    both = (pred == c).sum() + (label == c).sum()
    return float(2 * ((pred == c) & (label == c)).sum() / both) if both else 1.0


@torch.no_grad()
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cases")
    parser.add_argument("--out")
    args = parser.parse_args()
    method = load_model(args.model)
    method.eval()
    net = method.nets["net"]
    layers = [m for m in net.modules() if isinstance(m, Masksembles)]
    n, classes = layers[0].n, method.net_config.num_classes
    dice = np.zeros((n, classes - 1))
    lone_dissent = []
    cases = load_cases(args.data, read_case_list(args.cases))
    for case in cases:
        image = torch.from_numpy(case.image)[None, None]
        preds = []
        for j in range(n):
            for layer in layers:
                layer.only = j
            patch, device = tuple(method.patch_size), method.device
            prob = blend_windows(lambda w: {"p": torch.softmax(net(w), 1)}, image, patch, device)["p"]
            preds.append(prob[0].argmax(0).numpy())
        for layer in layers:
            layer.only = None
        for j, pred in enumerate(preds):
            dice[j] += [class_dice(pred, case.label, c) for c in range(1, classes)]
        stacked, roi = np.stack(preds), roi_mask(case.label, "gt_bbox")
        agree = (stacked[:, None] == stacked[None]).sum(1)  # (n, *S): masks agreeing with mask j, j included
        lone_dissent.append(float(((agree == 1).sum(0) == 1)[roi].mean()))
    dice /= len(cases)
    result = {
        "model": args.model,
        "cases": len(cases),
        "dice_per_mask_and_class": dice.round(4).tolist(),
        "one_mask_dissents_share_of_roi": round(float(np.mean(lone_dissent)), 4),
    }
    for j, row in enumerate(dice):
        print(f"mask {j}: " + "  ".join(f"Dice class {c + 1} {d:.3f}" for c, d in enumerate(row)))
    print(f"share of ROI voxels where one mask alone disagrees: {result['one_mask_dissents_share_of_roi']:.4f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
