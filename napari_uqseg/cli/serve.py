"""``uqseg serve``: the HTTP backend (protocol v1) for napari, 3D Slicer and scripts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from napari_uqseg.cli.serve_limits import add_load_arguments, load_options
from napari_uqseg.core.errors import InputError


def default_data_dir() -> Path:
    """Per-user data folder of the server (platformdirs), used when ``--data-dir`` is not given."""
    import platformdirs

    return Path(platformdirs.user_data_dir("napari-uqseg")) / "server"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the backend server (GPU when present, CPU otherwise)")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default loopback only)")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--data-dir", help="images, predictions, corrections, models, jobs, token (default: per-user)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
    p.add_argument(
        "--import-model",
        action="append",
        default=[],
        metavar="NAME=MODEL_DIR",
        help="register a model folder as NAME v1 (skipped when NAME already exists); repeatable",
    )
    p.add_argument("--max-upload-mb", type=int, default=2048, help="largest image upload")
    p.add_argument("--max-json-mb", type=int, default=64, help="largest JSON body (corrections carry a label map)")
    p.add_argument("--max-voxels", type=int, default=512 * 512 * 1024, help="largest image accepted")
    p.add_argument("--no-auth", action="store_true", help="no bearer token (refused unless bound to loopback)")
    p.add_argument("--ssl-certfile")
    p.add_argument("--ssl-keyfile")
    p.add_argument("--allow-insecure-public", action="store_true", help="public bind without TLS (behind a TLS proxy)")
    p.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name the server answers to besides loopback names (DNS-rebinding guard); repeatable",
    )
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="where jobs run (ray: pip extra [ray])"
    )
    add_load_arguments(p)
    from napari_uqseg.server.device_lease import add_policy_arguments

    add_policy_arguments(p)  # --job-max-pause-s, --job-gpu-fraction, --job-cpu-threads
    p.add_argument("--ray-address", help="Ray cluster address for --executor ray")
    p.add_argument("--num-gpus", type=float, default=1.0, help="GPUs per job for --executor ray")
    p.add_argument("--dicomweb", metavar="URL", help="DICOMweb root of a PACS (e.g. http://orthanc:8042/dicom-web)")
    p.add_argument("--dicomweb-token", help="bearer token for the PACS (default: $UQSEG_DICOMWEB_TOKEN)")
    p.set_defaults(run=run)


def parse_imports(items: list[str]) -> list[tuple[str, Path]]:
    """``NAME=DIR`` pairs of ``--import-model``."""
    out = []
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name or not folder:
            raise InputError("--import-model", f"expected NAME=MODEL_DIR, got {item!r}")
        out.append((name, Path(folder)))
    return out


def allowed_hosts(bind: str, extra: list[str]) -> list[str] | None:
    """Host names the server answers to: loopback names (and ``extra``) on a loopback bind; on a public
    bind ``extra`` plus the bound address, or any host (``None``) when no ``--allowed-host`` is given."""
    from napari_uqseg.server.request_guard import LOOPBACK_NAMES
    from napari_uqseg.server.security import is_loopback

    if is_loopback(bind):
        return [*LOOPBACK_NAMES, bind, *extra]
    return [bind, *extra] if extra else None


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from napari_uqseg.server.app import MiB, create_app
    from napari_uqseg.server.device_lease import policy_from_args
    from napari_uqseg.server.retention import RetentionThread
    from napari_uqseg.server.security import check_bind, load_or_create_token
    from napari_uqseg.server.service import Service

    os.umask(0o077)  # every file and folder the server (and its job processes) creates is private to its user
    tls = bool(args.ssl_certfile and args.ssl_keyfile)
    check_bind(args.host, not args.no_auth, tls, args.allow_insecure_public)
    imports = parse_imports(args.import_model)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    load, retention = load_options(args)
    jobs, lease = args.executor == "local", policy_from_args(args)
    service = Service(data_dir, args.device, jobs=jobs, max_voxels=args.max_voxels, load=load, lease=lease)
    RetentionThread(service.store, retention).start()
    if args.executor == "ray":
        from napari_uqseg.server.executor import RayExecutor

        service.executor = RayExecutor(service.store, args.num_gpus, args.ray_address)
        service.executor.start()
    if args.dicomweb:
        from napari_uqseg.server.dicomweb import PacsGateway

        service.pacs = PacsGateway(args.dicomweb, args.dicomweb_token or os.environ.get("UQSEG_DICOMWEB_TOKEN"))
    known = set(service.store.ledger.model_names())
    for name, folder in imports:
        if name in known:
            print(f"model {name} already in the data folder; --import-model {name} skipped", flush=True)
        else:
            service.import_model(name, folder)
    token = None
    if not args.no_auth:
        token, created = load_or_create_token(service.store.root)
        if created:
            print(
                f"bearer token (shown once; stored with mode 0600 in {service.store.root / 'token'}):\n{token}",
                flush=True,
            )
    app = create_app(
        service, token, args.max_upload_mb * MiB, args.max_json_mb * MiB, allowed_hosts(args.host, args.allowed_host)
    )
    scheme = "https" if tls else "http"
    print(
        f"uqseg serve: {scheme}://{args.host}:{args.port} device={service.device} data={service.store.root}", flush=True
    )
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        timeout_graceful_shutdown=5,
    )
    uvicorn.Server(config).run()
    return 0
