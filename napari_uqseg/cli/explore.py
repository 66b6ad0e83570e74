"""``uqseg explore``: open an evaluation report (or two, to compare) in napari with the explorer widget."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explore", help="open `uqseg evaluate` report folder(s) in napari (second one: compare)")
    p.add_argument("report", help="report folder written by `uqseg evaluate`")
    p.add_argument("compare", nargs="?", help="a second report on the same cases (another method) to compare with")
    p.add_argument("--case", help="case id to open first (default: the worst silent failure)")
    p.set_defaults(run=run)


def open_explorer(viewer: object, report: str, compare: str | None = None, case: str | None = None) -> object:
    """Dock the explorer in ``viewer``, open the report(s) and show ``case`` (default: the top silent failure).

    Returns the widget. Shared by this command and ``scripts/screenshot_explorer.py``.
    """
    from napari_uqseg.napari_ui.explorer_widget import ExplorerWidget

    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Explore evaluation", area="right")
    widget.open_report(report)
    if compare:
        widget.open_comparison(compare)
    if case is None:
        widget.sort_by("silent_failure")
        case = widget.case_order()[0]
    widget.select_case(case)
    return widget


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.core.report import read_report

    read_report(args.report)  # a bad folder fails with its InputError before a napari window opens
    if args.compare:
        read_report(args.compare)
    import napari

    viewer = napari.Viewer(title="napari-uqseg: explore evaluation")
    open_explorer(viewer, args.report, args.compare, args.case)
    napari.run()
    return 0
