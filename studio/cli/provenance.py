"""``studio manifests``: which images and people each shipped model was trained on."""

from __future__ import annotations

import argparse

from studio.cli.options import add_quiet, data_present, progress_for


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("manifests", help="(re)write the shipped models' training manifests "
                       "from the selections they were built with")
    add_quiet(p)
    p.set_defaults(func=cmd_manifests)


def cmd_manifests(args: argparse.Namespace) -> int:
    from studio.core.datasets import TrainingManifest
    from studio.core.evaluation.provenance import write_shipped_manifests

    if not data_present():
        return 2
    with progress_for(args) as progress:
        written = write_shipped_manifests(progress=progress)
    for model, path in written.items():
        manifest = TrainingManifest.load(path)
        people = len(manifest.identities("celeba-id"))
        print(f"{model}: {len(manifest.entries)} images, {people} celeba-id identities "
              f"-> {path} ({path.stat().st_size / 1e3:.0f} kB)")
    return 0
