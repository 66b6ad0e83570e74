"""``uqseg models list|pull|import|export``: the model catalogue and model archives of a data folder.

The data folder is the one napari's "Local" connection uses (``--data``, default the per-user folder), or
a server's ``--data`` folder; models land there as versions, exactly as the server registers them.
"""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="model catalogue: list, pull (sha256-verified), import, export")
    p.add_argument("--data", default=None, help="data folder (default: the napari Local folder)")
    p.add_argument(
        "--catalogue", default=None, help="catalogue JSON path or URL (default: $UQSEG_CATALOGUE or shipped)"
    )
    actions = p.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="catalogue entries and the models installed in the data folder")
    pull = actions.add_parser("pull", help="download a catalogue entry, verify its sha256, register it")
    pull.add_argument("entry")
    pull.add_argument("--name", default=None, help="model name in the data folder (default: the entry's name)")
    imp = actions.add_parser("import", help="register a model folder or .tar.gz archive")
    imp.add_argument("path")
    imp.add_argument("--name", required=True)
    exp = actions.add_parser("export", help="write a model version as a .tar.gz archive and its catalogue entry")
    exp.add_argument("name")
    exp.add_argument("--version", default=None, help="default: the serving version")
    exp.add_argument("--out", required=True, help="archive path (.tar.gz)")
    exp.add_argument("--url", default=None, help="where the archive will be published (for the printed entry)")
    p.set_defaults(run=run)


def _service(args: argparse.Namespace):  # noqa: ANN202 (engine type, imported late)
    from napari_uqseg.client.local import default_local_dir
    from napari_uqseg.server.service import Service

    return Service(args.data or default_local_dir(), device="cpu", jobs=False)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.server import model_library

    if args.action == "list":
        for entry in model_library.catalogue(args.catalogue):
            card = entry.card
            print(f"{entry.name:20} {card.get('method', '?'):14} {card.get('task', '')}  [{entry.url}]")
        service = _service(args)
        try:
            installed = service.models()
        finally:
            service.close()
        print(f"\ninstalled in {service.store.root}:" if installed else f"\nnothing installed in {service.store.root}")
        for model in installed:
            print(f"  {model.name:18} serving {model.serving} ({model.method_of()}), versions {len(model.versions)}")
        return 0
    service = _service(args)
    try:
        if args.action == "pull":
            summary = model_library.pull_model(service, args.entry, args.name, args.catalogue)
            print(f"pulled {args.entry} (sha256 verified) -> {summary.name} {summary.versions[-1].version}")
        elif args.action == "import":
            summary = model_library.import_model(service, args.name, args.path)
            print(f"imported {args.path} -> {summary.name} {summary.versions[-1].version}")
        else:
            from napari_uqseg.core.catalogue import sha256_file
            from napari_uqseg.engine.model_folder import read_card

            archive = model_library.export_model(service, args.name, args.version, args.out)
            version = args.version or service.model(args.name).serving
            card = read_card(service.store.model_dir(args.name, version))
            entry = {
                "name": args.name,
                "url": args.url or archive.resolve().as_uri(),
                "sha256": sha256_file(archive),
                "card": {"method": card.method, "labels": card.labels, "task": "", "licence": "", "figures": ""},
            }
            print(f"wrote {archive}\ncatalogue entry:\n{json.dumps(entry, indent=1)}")
    finally:
        service.close()
    return 0
