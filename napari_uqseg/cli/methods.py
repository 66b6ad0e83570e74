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
    from napari_uqseg.engine.unet import UNetConfig

    rows = []
    for _, cls in sorted(registered_methods().items()):
        method = cls(UNetConfig())
        info = method.info()
        rows.append({**info.to_dict(), "parameters": method.parameter_count()})
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"{'method':22} {'passes':>7} {'params':>10}  maps / summary")
    for r in rows:
        print(f"{r['name']:22} {r['forward_passes']:7.2f} {r['parameters']:10d}  {', '.join(r['maps'])}")
        print(f"{'':22} {'':7} {'':10}  {r['summary']}")
    return 0
