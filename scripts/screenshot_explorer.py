"""Screenshot of the "Explore evaluation" widget on a report, for the docs.

Usage (a display is needed; on a headless machine prefix ``xvfb-run -a``)::

    python scripts/screenshot_explorer.py --report REPORT_DIR --out docs/img/explorer.png [--compare DIR2] [--case ID]

Opens napari with the explorer exactly as ``uqseg explore`` does, shows ``--case`` (default: the top silent
failure, low Dice with low uncertainty), and saves the whole window (viewer, table and plot panel).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--report", required=True, help="report folder written by `uqseg evaluate`")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--compare", help="second report to compare with")
    parser.add_argument("--case", help="case to show (default: the top silent failure)")
    parser.add_argument("--size", default="1600x1000", help="window size WIDTHxHEIGHT in pixels")
    args = parser.parse_args(argv)

    import napari

    from napari_uqseg.cli.explore import open_explorer
    from napari_uqseg.core.report import read_report

    read_report(args.report)  # fail before opening a window
    width, height = (int(v) for v in args.size.lower().split("x"))
    viewer = napari.Viewer(title="napari-uqseg: explore evaluation", show=True)
    viewer.window.resize(width, height)
    widget = open_explorer(viewer, args.report, args.compare, args.case)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    napari.qt.get_qapp().processEvents()
    viewer.screenshot(str(out), canvas_only=False, flash=False)
    viewer.close()
    print(f"screenshot of case {widget.current_case} written to {out}")
    return out


if __name__ == "__main__":
    main()
