"""The ``uqseg`` command: one module per sub-command, each with ``add_parser`` and ``run``."""

from __future__ import annotations

import argparse
import importlib
import sys

from napari_uqseg.core.errors import CancelledError, UQSegError

#: sub-command modules under ``napari_uqseg.cli``, in the order ``uqseg --help`` lists them
COMMANDS = (
    "demo",
    "methods",
    "split",
    "train",
    "calibrate",
    "conformal",
    "predict",
    "triage",
    "evaluate",
    "serve",
    "bench",
    "explore",
    "loop",
    "users",
    "reliability",
    "models",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="uqseg", description="Uncertainty-aware segmentation of medical images.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"napari_uqseg.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"napari_uqseg.cli.{name}":
                raise
            continue  # a sub-command whose module is not part of this install
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the process exit code (2 for bad input, 130 when cancelled)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except UQSegError as exc:
        if isinstance(exc, CancelledError):
            print("cancelled", file=sys.stderr)
            return 130
        print(f"uqseg {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
