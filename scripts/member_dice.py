"""Per-sample Dice of any trained model on chosen cases (`engine.member_check`, which `uqseg train` runs on
its validation cases): does every member / mask / checkpoint / head / sample segment every class?

Usage: python scripts/member_dice.py --model MODEL --data DIR --cases FILE [--out JSON]
"""

from __future__ import annotations

import argparse
import json

from napari_uqseg.engine.data import load_cases, read_case_list
from napari_uqseg.engine.member_check import check_members
from napari_uqseg.engine.model_folder import load_model, read_card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cases")
    parser.add_argument("--out")
    args = parser.parse_args()
    method = load_model(args.model)
    result = check_members(method, load_cases(args.data, read_case_list(args.cases)), read_card(args.model).labels)
    for m, row in enumerate(result["dice_per_sample_and_class"]):
        print(f"sample {m}: " + "  ".join(f"Dice class {c + 1} {d:.3f}" for c, d in enumerate(row)))
    print(f"share of ROI voxels where one sample alone disagrees: {result['one_sample_dissents_share_of_roi']:.4f}")
    for warning in result["warnings"]:
        print(f"warning: {warning}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"model": args.model, "method": method.name, **result}, f, indent=1)


if __name__ == "__main__":
    main()
