"""``uqseg methods``: the registered methods and their forward-pass cost."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("methods", help="list uncertainty methods with their forward-pass cost")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    from napari_uqseg.engine.methods.base import registered_methods
    from napari_uqseg.engine.tta import with_tta
    from napari_uqseg.engine.unet import UNetConfig

    rows = []
    for _, cls in sorted(registered_methods().items()):
        method = cls(UNetConfig())
        info = method.info()
        flips = with_tta(method, "flips").forward_passes()
        rows.append({**info.to_dict(), "parameters": method.parameter_count(), "forward_passes_tta_flips": flips})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'method':22} {'passes':>7} {'+TTA':>6} {'params':>10}  maps / summary")
    for r in rows:
        passes, tta = r["forward_passes"], r["forward_passes_tta_flips"]
        print(f"{r['name']:22} {passes:7.2f} {tta:6.1f} {r['parameters']:10d}  {', '.join(r['maps'])}")
        print(f"{'':22} {'':7} {'':6} {'':10}  {r['summary']}")
    print("+TTA: forward passes with --tta flips (the original and one flip per axis; every method, any model)")
    return 0
