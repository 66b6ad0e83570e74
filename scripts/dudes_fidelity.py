"""DUDES fidelity on held-back cases: how close the student's uncertainty is to its teacher's.

Usage: python scripts/dudes_fidelity.py --student MODEL --teacher MODEL --data DIR --cases FILE [--out JSON]
Prints mean |student - teacher| of the predicted-class std inside each case's ground-truth bounding box
(mean over cases), and both models' mean Dice.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from napari_uqseg.core.metrics import mean_dice, roi_mask
from napari_uqseg.core.nifti_io import load_image, load_label
from napari_uqseg.engine.data import case_pairs, num_classes_of, read_case_list
from napari_uqseg.engine.inference import predict_volume
from napari_uqseg.engine.model_folder import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--cases")
    parser.add_argument("--out")
    args = parser.parse_args()
    wanted = read_case_list(args.cases)
    num_classes, _ = num_classes_of(args.data)
    student, teacher = load_model(args.student), load_model(args.teacher)
    rows = []
    for case_id, image_path, label_path in case_pairs(args.data):
        if wanted is not None and case_id not in wanted:
            continue
        image = load_image(image_path)
        label = load_label(label_path, image, num_classes).array
        s, t = predict_volume(student, image), predict_volume(teacher, image)
        roi = roi_mask(label, "gt_bbox")
        gap = np.abs(s.maps["class_std"].array - t.maps["class_std"].array)[roi]
        rows.append(
            {
                "case": case_id,
                "mean_abs_gap": float(gap.mean()),
                "teacher_mean_std": float(t.maps["class_std"].array[roi].mean()),
                "student_dice": mean_dice(s.mask.array, label, num_classes),
                "teacher_dice": mean_dice(t.mask.array, label, num_classes),
            }
        )
    summary = {
        k: float(np.mean([r[k] for r in rows]))
        for k in ("mean_abs_gap", "teacher_mean_std", "student_dice", "teacher_dice")
    }
    summary["cases"] = len(rows)
    print(json.dumps(summary, indent=1))
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"summary": summary, "cases": rows}, fh, indent=1)


if __name__ == "__main__":
    main()
