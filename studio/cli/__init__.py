"""The ``studio`` command: the window, analysis, training, batches, exports, anonymising and
evaluations.

One module per group of commands; each has ``register(sub)``, which adds its sub-commands,
and imports the core only inside its command functions, so that ``studio --help`` is quick.
What several commands share (options, attribute flags, progress bars) is in ``options``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from studio.cli import (
    analysis,
    anonymize,
    app,
    crowd,
    evaluation,
    generator,
    morphable,
    provenance,
    refiner,
    workspace,
)
from studio.core.errors import StudioError

#: In the order ``studio --help`` lists them.
GROUPS = (app, analysis, generator, morphable, refiner, workspace, anonymize, evaluation,
          crowd, provenance)

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio", description="Surrogate Studio: surrogate faces that keep expression and "
        "head pose but not identity.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
