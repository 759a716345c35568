"""``studio evaluate``: privacy and utility of every de-identification method."""

from __future__ import annotations

import argparse
import sys

from studio.cli.options import add_quiet, add_strict, add_workers, progress_for, split_list


def register(sub: argparse._SubParsersAction) -> None:
    from studio.core.evaluation.methods import FAMILIES

    p = sub.add_parser("evaluate", help="privacy and utility of surrogates against blur, "
                                        "pixelation and masks, with re-identification attacks")
    p.add_argument("--data", action="append", required=True, metavar="DIR",
                   help="GENKI-4K, celeba-id or UTKFace folder, or any folder of photos "
                        "(sub-folders name the person); repeat for several")
    p.add_argument("--methods", default=",".join(FAMILIES),
                   help=f"comma-separated: {', '.join(FAMILIES)} (or all)")
    p.add_argument("--out", required=True, help="report folder (index.html, per_face.csv, "
                                                "summary.json, plots)")
    p.add_argument("--markdown", default=None, help="also write the report as Markdown here")
    p.add_argument("--limit", type=int, default=None, help="photos per data folder")
    add_workers(p)
    add_strict(p, "a GAN bar")
    add_quiet(p)
    p.set_defaults(func=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from studio.core.evaluation.job import evaluate_folders
    from studio.core.evaluation.methods import FAMILIES
    from studio.core.evaluation.tables import checks

    families = split_list(args.methods)
    if families == ["all"]:
        families = list(FAMILIES)
    with progress_for(args) as progress:
        done = evaluate_folders(args.data, families, args.out, limit=args.limit,
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
