"""``studio batch`` and ``export``: a curation workspace, filled and exported to a crowd."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.cli.options import add_quiet, add_seed, add_workers, progress_for, split_list


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="fill a curation workspace from a folder of photos")
    p.add_argument("folder", help="folder of face photos (read only, searched recursively)")
    p.add_argument("--workspace", required=True, help="workspace file, e.g. study.studio")
    p.add_argument("--candidates", type=int, default=3, help="candidates per face and method")
    p.add_argument("--methods", default="gan,3d", help="gan, 3d or both")
    add_workers(p, help="photos analysed in parallel")
    add_quiet(p)
    p.set_defaults(func=cmd_batch)

    p = sub.add_parser("export", help="write accepted surrogates as a crowd annotation batch")
    p.add_argument("workspace", help="workspace file")
    p.add_argument("out_dir", help="new folder for the batch (must not exist)")
    p.add_argument("--format", default="mturk,labelstudio", help="mturk, labelstudio or both")
    p.add_argument("--base-url", default="", help="where OUT_DIR will be served (for mturk)")
    p.add_argument("--mapping", default=None,
                   help="private item -> original mapping (default: OUT_DIR.private-mapping"
                        ".csv beside OUT_DIR)")
    p.add_argument("--truth", default=None, help="CSV original_key,label for gold items")
    p.add_argument("--gold", type=int, default=0, help="gold items (need --truth)")
    p.add_argument("--repeat", type=int, default=0, help="repeated items for consistency")
    p.add_argument("--expressions", action="store_true",
                   help="also ask for one of seven basic expressions (Label Studio)")
    add_seed(p, default=None, help="item ids and order are random")
    p.set_defaults(func=cmd_export)


def cmd_batch(args: argparse.Namespace) -> int:
    from studio.core.surrogates.making import batch_engine
    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.store import Workspace

    workers = max(1, args.workers)
    engine = batch_engine(workers)
    try:
        with Workspace(args.workspace) as ws, progress_for(args) as progress:
            report = run_batch(args.folder, ws, engine, candidates=args.candidates,
                               methods=tuple(split_list(args.methods)), progress=progress,
                               workers=workers)
            summary = ws.summary()
    finally:
        engine.close()
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    print(f"{report.originals} photos ({report.skipped_done} already done, "
          f"{report.unreadable} unreadable, {report.no_face} without a face), "
          f"{report.faces} faces, {report.candidates} candidates in {report.seconds:.1f} s "
          f"({report.faces_per_second:.2f} faces/s)")
    print(f"workspace {args.workspace}: {json.dumps(summary)}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.crowd.formats import read_truth
    from studio.core.workspace.export import export_batch
    from studio.core.workspace.store import Workspace

    truth = None
    if args.truth:
        truth, problems = read_truth(Path(args.truth))
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    with FaceAnalyzer() as analyzer, Workspace(args.workspace) as ws:
        report = export_batch(
            ws, args.out_dir, analyzer, formats=tuple(split_list(args.format)),
            base_url=args.base_url, mapping=args.mapping, truth=truth, gold=args.gold,
            repeats=args.repeat, expressions=args.expressions, seed=args.seed)
    for line in report.refused:
        print(f"REFUSED by the identity gate: {line}", file=sys.stderr)
    print(f"exported {report.items} items, {report.gold} gold, {report.repeats} repeats "
          f"-> {report.out_dir}")
    print(f"private mapping (keep it away from workers) -> {report.mapping}")
    return 1 if report.refused else 0
