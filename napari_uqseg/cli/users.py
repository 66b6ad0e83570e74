"""``uqseg users add|list|revoke``: per-user tokens of a team server (run on the server machine)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("users", help="add, list or revoke the users (tokens and roles) of a server's data folder")
    p.add_argument("--data-dir", help="the server's data folder (default: the per-user one `uqseg serve` uses)")
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="create a user and print their token once")
    add.add_argument("name")
    add.add_argument("--role", choices=("reader", "maintainer"), default="reader")
    actions.add_parser("list", help="list users and roles (never tokens)")
    revoke = actions.add_parser("revoke", help="revoke a user's token")
    revoke.add_argument("name")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from napari_uqseg.cli.serve import default_data_dir
    from napari_uqseg.server.data_dir import DataDir
    from napari_uqseg.server.users import Users

    os.umask(0o077)
    data_dir = Path(args.data_dir) if args.data_dir else default_data_dir()
    store = DataDir(data_dir)
    users = Users(store.ledger)
    try:
        if args.action == "add":
            token = users.add(args.name, args.role)
            print(f"user {args.name} ({args.role}) created; their bearer token (shown once, stored hashed):")
            print(token)
        elif args.action == "revoke":
            users.revoke(args.name)
            print(f"user {args.name}: token revoked (a running server stops accepting it within seconds)")
        else:
            for row in users.list():
                state = "revoked " + time.strftime("%Y-%m-%d", time.localtime(row["revoked"])) if row["revoked"] else ""
                print(f"{row['name']:24s} {row['role']:10s} {state}")
    finally:
        store.ledger.close()
    return 0
