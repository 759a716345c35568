"""``studio evaluate``: privacy and utility of every de-identification method."""

from __future__ import annotations

import argparse
import sys

from studio.cli.options import (
    add_quiet,
    add_seed,
    add_strict,
    add_workers,
    data_present,
    progress_for,
    split_list,
)


def register(sub: argparse._SubParsersAction) -> None:
    from studio.core.evaluation.methods import families

    p = sub.add_parser("evaluate", help="privacy and utility of surrogates against blur, "
                                        "pixelation and masks, with re-identification attacks")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="GENKI-4K, celeba-id or UTKFace folder, or any folder of photos "
                        "(sub-folders name the person); repeat for several")
    p.add_argument("--methods", default=",".join(families()),
                   help=f"comma-separated: {', '.join(families())} (or all)")
    p.add_argument("--out", required=True, help="report folder (index.html, per_face.csv, "
                                                "summary.json, plots)")
    p.add_argument("--markdown", default=None, help="also write the report as Markdown here")
    p.add_argument("--limit", type=int, default=None, help="photos per data folder")
    add_workers(p)
    add_strict(p, "a GAN bar")
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate)
    _register_realism(sub)


def _register_realism(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("evaluate-realism",
                       help="how real each method's faces look: HOG face-found rate, FD, KID "
                            "and a classifier test against held-out reals, beside real-vs-real")
    r.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="face set (default: GENKI-4K test split and UTKFace hold-out of the "
                        "research data); repeat for several")
    from studio.core.surrogates.registry import REGISTRY

    r.add_argument("--methods", default=",".join(REGISTRY.batch_defaults()),
                   help="comma-separated: " + ", ".join(REGISTRY.keys()) + " (or all)")
    r.add_argument("--limit", type=int, default=None, help="faces per data set")
    r.add_argument("--json", default=None, metavar="PATH", help="also write the figures here")
    add_seed(r, help="seed of the real-versus-real split and the classifier folds")
    add_workers(r)
    add_quiet(r)
    r.set_defaults(func=cmd_evaluate_realism)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.core.evaluation.job import evaluate_folders
    from studio.core.evaluation.methods import families
    from studio.core.evaluation.tables import checks

    chosen = split_list(args.methods)
    if chosen == ["all"]:
        chosen = list(families())
    with progress_for(args) as progress:
        done = evaluate_folders(args.data, chosen, args.out, limit=args.limit,
                                workers=max(1, args.workers), markdown=args.markdown,
                                command=" ".join(["studio", *sys.argv[1:]]), progress=progress)
    run = done.run
    for problem in run.problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"{sum(len(d.sources) for d in run.datasets)} photos, {run.computed} analysed now "
          f"(the rest from the cache) in {run.seconds:.1f} s; report: {done.index}")
    passed = True
    for dataset, name, value, ok in checks(done.results):
        print(f"  GAN surrogate, {dataset}: {name} {value} {'pass' if ok else 'FAIL'}")
        passed &= ok
    return 0 if passed or not args.strict else 1


def cmd_evaluate_realism(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from studio.core.datasets import data_root
    from studio.core.evaluation.realism import REALISM_SIZE, study_realism
    from studio.core.evaluation.sources import discover
    from studio.core.surrogates.making import batch_engine
    from studio.core.surrogates.registry import REGISTRY

    keys = split_list(args.methods)
    if keys == ["all"]:
        keys = list(REGISTRY.keys())
    unknown = [k for k in keys if k not in REGISTRY]
    if unknown:
        names = ", ".join(REGISTRY.keys())
        print(f"error: unknown method {', '.join(unknown)}; use {names}", file=sys.stderr)
        return 2
    if args.data is None and not data_present():
        return 2
    folders = args.data or [data_root() / "genki4k", data_root() / "utkface"]
    datasets = [discover(folder, args.limit) for folder in folders]
    engine = batch_engine(args.workers)
    try:
        if REGISTRY.rendered(keys):
            engine.load_3d()
        with progress_for(args) as progress:
            studies = [study_realism(engine, d, keys, args.workers, args.seed, progress)
                       for d in datasets]
    finally:
        engine.close()
    print(f"Realism at {REALISM_SIZE} px; each figure beside real-vs-real (two halves of "
          "the reals). C2ST: 0.5 = indistinguishable.")
    for study in studies:
        for problem in study.skipped:
            print(f"  {problem}", file=sys.stderr)
        print(f"\n{study.dataset}: {len(study.reals)} reals "
              f"({len(study.skipped)} set aside)")
        for key, result in study.results.items():
            print(f"  {REGISTRY[key].label}")
            for line in _realism_lines(result):
                print(f"    {line}")
    if args.json:
        out = {s.dataset: {k: r.to_dict() for k, r in s.results.items()} for s in studies}
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


def _realism_lines(r) -> list[str]:
    """The figures of a RealismResult beside its reference, with the ratio."""
    ref = r.reference
    found_ratio = r.face_found / r.face_found_reals if r.face_found_reals else float("nan")
    lines = [f"{'':26}{'output':>10}{'real-real':>11}{'ratio':>8}",
             f"{'HOG face found (reals)':26}{r.face_found:10.3f}{r.face_found_reals:11.3f}"
             f"{found_ratio:8.2f}"]
    rows = [("C2ST, descriptor", "c2st", 3), ("C2ST, pooled stage", "c2st_pooled", 3),
            ("FD, descriptor", "fd", 4), ("FD, pooled stage", "fd_pooled", 3),
            ("KID, descriptor", "kid", 5), ("KID, pooled stage", "kid_pooled", 4)]
    for name, key, digits in rows:
        value, base = getattr(r, key), getattr(ref, key)
        # a ratio means something for distances, not for accuracies (chance is 0.5)
        ratio = f"{value / base:8.1f}" if base > 0 and key[0] != "c" else f"{'-':>8}"
        lines.append(f"{name:26}{value:10.{digits}f}{base:11.{digits}f}{ratio}")
    lines.append(f"{'sharpness / reals':26}{r.sharpness_ratio:10.3f}"
                 f"{ref.sharpness_ratio:11.3f}")
    lines.append(f"{'C2ST, pixel-space CNN':26}{r.pixel_c2st:10.3f}{ref.pixel_c2st:11.3f}"
                 f"{'-':>8}")
    return lines
