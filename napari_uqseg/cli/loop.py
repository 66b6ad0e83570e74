"""``uqseg loop``: the review-loop benchmark (docs/loop.md).

``uqseg loop methods``: per model, review regions, errors found per order and case scores (validation-chosen
default, test figures). ``uqseg loop run``: the loop itself through a real server with a simulated reader.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "loop",
        help="benchmark the review loop: regions, case scores, fine-tuning on corrections (docs/loop.md)",
        description="Two steps. `methods`: for each model, predict its validation cases, the test cases and the "
        "test cases at a simulated new site; report region sizes, errors found in the first regions (uncertainty, "
        "random, oracle order) and each case score. `run`: a simulated reader corrects site cases through a real "
        "server, which fine-tunes every k cases; Dice of each new version on unseen site and in-distribution cases.",
    )
    steps = p.add_subparsers(dest="step", required=True)
    m = steps.add_parser("methods", help="per-model region and case-score figures")
    m.add_argument("--model", action="append", required=True, help="model folder (repeat for several)")
    m.add_argument("--cases", required=True, help="test case list (e.g. test.txt of `uqseg split`)")
    m.add_argument("--out", required=True, help="folder for methods.json and the errors-found PNGs")
    m.add_argument("--site", help="simulated site as NAME:SEV,... (default core.site.SIMULATED_SITE)")
    m.add_argument("--device", default="cpu")
    m.add_argument(
        "--selection-shift",
        help="shift of the validation cases that the default case score must detect, as NAME:SEV,... "
        "(default bench.loop_methods.SELECTION_SHIFT; keep it unlike --site)",
    )
    m.add_argument(
        "--store-choices",
        action="store_true",
        help="store the defaults chosen on each model's validation cases in its card: the review map whose queue "
        "found most errors and the case score (core.case_scores.choose_case_score)",
    )
    m.set_defaults(run=run_methods)
    r = steps.add_parser("run", help="the loop through a real server")
    r.add_argument("--model", required=True, help="model folder served as version v1")
    r.add_argument("--data", required=True, help="MSD-layout dataset folder")
    r.add_argument("--cases", required=True, help="test case list; the site's cases are drawn from it")
    r.add_argument("--out", required=True, help="work folder (servers' data) and loop.json, loop_dice.png")
    r.add_argument("--k", type=int, default=5, help="cases corrected between fine-tunes (default 5)")
    r.add_argument("--rounds", type=int, default=1, help="fine-tunes per arm (default 1)")
    r.add_argument("--budget", type=float, default=0.10, help="reviewed share of ROI voxels (default 0.10)")
    r.add_argument("--arms", default="uncertainty,random,oracle,whole", help="comma-separated arms")
    r.add_argument("--finetune", default='{"iterations": 40, "held_back_fraction": 0.0}', help="options JSON")
    r.add_argument("--site", help="simulated site as NAME:SEV,... (default core.site.SIMULATED_SITE)")
    r.add_argument("--no-baseline", action="store_true", help="skip scoring v1 (arms added to an earlier run)")
    r.set_defaults(run=run_loop)


def run_methods(args: argparse.Namespace) -> int:
    from napari_uqseg.bench.loop_methods import BUDGETS, SELECTION_SHIFT, evaluate_model, summarise
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.loop_plots import errors_found_png
    from napari_uqseg.core.site import SIMULATED_SITE, parse_site
    from napari_uqseg.engine.data import read_case_list
    from napari_uqseg.engine.model_folder import store_choices

    site = parse_site(args.site) if args.site else SIMULATED_SITE
    selection = parse_site(args.selection_shift, "--selection-shift") if args.selection_shift else SELECTION_SHIFT
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    ids = read_case_list(args.cases)
    summaries = []
    for model in args.model:
        with progress_bar(f"loop methods {Path(model).name}") as progress:
            result = evaluate_model(model, ids, site, progress, args.device, selection)
        (out / f"{Path(model).name}.json").write_text(json.dumps(result, indent=1))
        summaries.append({"model": str(model), **summarise(result)})
        if args.store_choices:
            store_choices(model, summaries[-1]["best_review_map"], summaries[-1]["default_score"])
        (out / "methods.json").write_text(json.dumps(summaries, indent=1))
    for split in ("test", "site_test"):
        errors_found_png(summaries, list(BUDGETS), split, out / f"errors_found_{split}.png")
    print(json.dumps(summaries, indent=1))
    return 0


def run_loop(args: argparse.Namespace) -> int:
    from napari_uqseg.bench.review_loop import LoopConfig
    from napari_uqseg.bench.review_loop import run_loop as loop
    from napari_uqseg.cli.progress_bar import progress_bar
    from napari_uqseg.core.loop_plots import loop_dice_png
    from napari_uqseg.core.site import SIMULATED_SITE, parse_site
    from napari_uqseg.engine.data import read_case_list

    config = LoopConfig(
        k=args.k,
        rounds=args.rounds,
        budget=args.budget,
        arms=tuple(a.strip() for a in args.arms.split(",") if a.strip()),
        finetune=json.loads(args.finetune),
        site=parse_site(args.site) if args.site else SIMULATED_SITE,
        baseline=not args.no_baseline,
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with progress_bar("loop") as progress:
        result = loop(args.model, args.data, read_case_list(args.cases), out, config, progress)
    if "baseline" in result:
        loop_dice_png(result, out / "loop_dice.png")
    print(json.dumps({k: result.get(k) for k in ("baseline", "corrected", "seconds")}, indent=1))
    return 0
