"""``uqseg reliability``: the fault and load suite of the server; writes docs/reliability.md."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("reliability", help="bad inputs, load, kill -9 rounds and a full disk against real servers")
    p.add_argument("--size", choices=("ci", "full"), default="ci", help="ci: small and quick; full: the docs' figures")
    p.add_argument("--out", default="docs/reliability.md", help="markdown report to write")
    p.add_argument("--json", help="also write the raw figures here")
    p.add_argument("--work", help="folder for the servers' data (default: a new temporary folder)")
    p.add_argument("--models", help="folder with tiny models (default: built once under --work)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import tempfile

    from napari_uqseg.bench.reliability.suite import SIZES, keep_hand_written, markdown, run_suite, targets_met
    from napari_uqseg.bench.tiny_models import build_tiny_models

    work = Path(args.work or tempfile.mkdtemp(prefix="uqseg-reliability-"))
    models = build_tiny_models(Path(args.models) if args.models else work / "models", {"tiny_det": "deterministic"})
    figures = run_suite(models, SIZES[args.size], work)
    command = "uqseg reliability --size " + args.size
    out = Path(args.out)
    previous = out.read_text() if out.is_file() else ""
    out.write_text(keep_hand_written(markdown(figures, command), previous))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    met = targets_met(figures)
    for name, ok in met.items():
        print(f"{'met    ' if ok else 'NOT met'}  {name}")
    print(f"report: {args.out}", file=sys.stderr)
    return 0 if all(met.values()) or args.size == "ci" else 1
