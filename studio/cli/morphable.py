"""``studio build-morphable`` and ``evaluate-3d``: the 3D morphable face model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from studio.cli.options import add_quiet, add_seed, add_strict, data_present, progress_for
from studio.core.surrogates.registry import IN_CONTEXT, REGISTRY

#: What ``evaluate-incontext`` can measure: the refined surrogate and the composite before
#: the refiner (issue 27 measures both).
INCONTEXT_CHECKED = (IN_CONTEXT, "context-raw")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("build-morphable",
                       help="build the 3D morphable face model from ../shared/data")
    p.add_argument("--utk", type=int, default=2000, help="UTKFace training images to use")
    p.add_argument("--genki", type=int, default=1500, help="GENKI-4K training images to use")
    p.add_argument("--identity-components", type=int, default=40)
    p.add_argument("--texture-components", type=int, default=40)
    add_seed(p)
    p.add_argument("--out", default=None, help="default: models/morphable/face_3dmm.safetensors")
    p.add_argument("--extras", action="store_true",
                   help="build only the in-context surrogate's extras (gender axis, skin "
                        "detail) for the existing model, into face_3dmm_extras.safetensors")
    add_quiet(p)
    p.set_defaults(func=cmd_build_morphable)

    p = sub.add_parser("evaluate-3d", help="measure 3D surrogates on held-out faces")
    p.add_argument("--genki", type=int, default=300, help="GENKI-4K test images")
    p.add_argument("--utk", type=int, default=200, help="held-out UTKFace images")
    add_strict(p)
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate_3d)

    p = sub.add_parser("evaluate-incontext",
                       help="measure in-context surrogates on held-out faces (issue 15's "
                            "targets, with the distance to every training face)")
    p.add_argument("--genki", type=_count(0), default=300, help="GENKI-4K test images")
    p.add_argument("--utk", type=_count(0), default=200, help="held-out UTKFace images")
    p.add_argument("--training", type=_count(1), default=None,
                   help="training faces to compare with (default: all the build read)")
    p.add_argument("--method", choices=INCONTEXT_CHECKED, default=INCONTEXT_CHECKED[0],
                   help="the refined surrogate (default) or the unrefined composite")
    add_strict(p)
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate_incontext)


def cmd_build_morphable(args: argparse.Namespace) -> int:
    from studio.core.datasets import manifest_path
    from studio.core.morphable.build import build
    from studio.core.morphable.model import MORPHABLE_FILE

    if not data_present():
        return 2
    out = Path(args.out) if args.out else MORPHABLE_FILE
    if args.extras:
        return _build_extras(args, out)
    with progress_for(args) as progress:
        model = build(n_utk=args.utk, n_genki=args.genki, k_identity=args.identity_components,
                      k_texture=args.texture_components, seed=args.seed, progress=progress,
                      manifest_to=manifest_path(out))
    model.save(out)
    print(json.dumps(model.info, indent=1))
    print(f"morphable model -> {out} ({out.stat().st_size / 1e6:.1f} MB); training manifest "
          f"-> {manifest_path(out)}")
    return 0


def _build_extras(args: argparse.Namespace, model_file: Path) -> int:
    from studio.core.morphable.build_extras import build_extras
    from studio.core.morphable.extras import EXTRAS_FILE
    from studio.core.morphable.model import MorphableModel

    out = model_file.with_name(EXTRAS_FILE.name) if args.out else EXTRAS_FILE
    with progress_for(args) as progress:
        extras = build_extras(MorphableModel.load(model_file), n_utk=args.utk, seed=args.seed,
                              progress=progress)
    extras.save(out)
    print(json.dumps(extras.info, indent=1))
    print(f"in-context extras -> {out} ({out.stat().st_size / 1e3:.0f} kB)")
    return 0


def cmd_evaluate_3d(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.acceptance import format_table
    from studio.core.evaluation.check_3d import run_check
    from studio.core.morphable.surrogate import Surrogate3DMaker

    if not data_present():
        return 2
    with FaceAnalyzer() as analyzer, Surrogate3DMaker() as maker, \
            progress_for(args) as progress:
        metrics = run_check(analyzer, maker, n_genki=args.genki, n_utk=args.utk,
                            progress=progress)
    print(format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1


def _count(least: int):
    """``type=`` for a number of images: a whole number, ``least`` or more."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"{value}: at least {least}")
        return value

    return parse


def cmd_evaluate_incontext(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.evaluation.acceptance import format_table
    from studio.core.evaluation.check_incontext import run_check
    from studio.core.surrogates.incontext import InContextMaker

    if args.genki + args.utk < 1:
        from studio.core.errors import StudioError

        raise StudioError("--genki and --utk are both 0: there is no held-out face to measure")
    if not data_present():
        return 2
    with FaceAnalyzer() as analyzer, InContextMaker() as maker, \
            progress_for(args) as progress:
        metrics = run_check(analyzer, maker, n_genki=args.genki, n_utk=args.utk,
                            training_limit=args.training, progress=progress,
                            refine=REGISTRY[args.method].options.get("refine", True))
    print(format_table(metrics))
    return 0 if all(m.passed for m in metrics) or not args.strict else 1
