"""How the plateau rule's validation Dice of VI-MH depends on the samples per head it pools.

Loads a VI-MH training checkpoint (``<out>.work/net.resume.pt``) and prints, one JSON line each, the
validation Dice (the training run's own validation cases) pooled over ``S`` samples per head, for each ``S``
given, ``--draws`` times each (different weight noise), with the seconds each check took.

Usage: python scripts/vi_validation_samples.py --config configs/hippocampus/vi_multihead.json \
    --data DATA --cases runs/hippo_split/train.txt --checkpoint runs/hippo_models/vi_multihead.work/net.resume.pt
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from napari_uqseg.engine.data import load_cases, num_classes_of, read_case_list, split_cases
from napari_uqseg.engine.make_model import build_method, read_config
from napari_uqseg.engine.plateau import validation_dice


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cases", required=True, help="the training run's case list")
    parser.add_argument("--checkpoint", required=True, help="a <tag>.resume.pt of the VI-MH training")
    parser.add_argument("--samples", default="1,9", help="samples per head to compare")
    parser.add_argument("--draws", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    num_classes, _ = num_classes_of(args.data)
    method, cfg = build_method("vi_multihead", read_config(args.config), num_classes)
    saved = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    method.nets.load_state_dict(saved["module"])
    ids = read_case_list(args.cases)
    _, val_ids = split_cases(ids, cfg.val_fraction, cfg.seed, cfg.group_pairs)
    val = load_cases(args.data, val_ids, cfg.normalisation, method.net_config.spatial_dims)
    with torch.no_grad():
        for s in (int(v) for v in args.samples.split(",")):
            for draw in range(args.draws):
                torch.manual_seed(draw)
                start = time.perf_counter()
                forward = lambda x, s=s: method.pooled_statistics(x, s)["mean_prob"]  # noqa: E731
                dice = validation_dice(forward, val, cfg.patch_size, num_classes, method.device)
                row = {"samples_per_head": s, "draw": draw, "dice": dice, "seconds": time.perf_counter() - start}
                print(json.dumps(row), flush=True)
    print(json.dumps({"step": saved["history"]["iterations"], "validation_cases": len(val)}))


if __name__ == "__main__":
    main()
