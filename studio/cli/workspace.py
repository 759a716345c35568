"""``studio batch``, ``accept``, ``export`` and ``relink``: a curation workspace, filled,
accepted in bulk by a rule, exported to a crowd, and pointed at its originals' new folder."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from studio.cli.options import (
    add_min_face,
    add_quiet,
    add_ray,
    add_seed,
    add_workers,
    literal,
    progress_for,
    ray_options,
    split_list,
)
from studio.core.surrogates.registry import IN_CONTEXT, REGISTRY


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("batch", help="fill a curation workspace from a folder of photos",
                       description="Exit 1 when some photo could not be read or shows no "
                       "face (they are recorded and listed), 2 on bad usage.")
    p.add_argument("folder", help="folder of face photos (read only, searched recursively)")
    p.add_argument("--workspace", required=True, help="workspace file, e.g. study.studio")
    p.add_argument("--candidates", type=int, default=3, help="candidates per face and method")
    p.add_argument("--methods", default=",".join(REGISTRY.batch_defaults()),
                   help=literal("comma-separated: " + ", ".join(
                       f"{s.key} ({s.label})" for s in REGISTRY if s.candidate)))
    add_workers(p, help="photos analysed in parallel (default 2; with --ray, every CPU)",
                default=None, cluster=True)
    add_min_face(p)
    add_ray(p)
    add_quiet(p)
    p.set_defaults(func=cmd_batch)

    _register_accept(sub)

    p = sub.add_parser("export", help="write accepted surrogates as a crowd annotation batch")
    p.add_argument("workspace", help="workspace file")
    p.add_argument("out_dir", help="new folder for the batch (must not exist)")
    p.add_argument("--format", default="mturk,labelstudio", help="mturk, labelstudio or both")
    p.add_argument("--base-url", default="", help="where OUT_DIR will be served (for mturk)")
    p.add_argument("--local-files-root", default=None,
                   help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT: tasks use its "
                        "/data/local-files/?d= form")
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

    p = sub.add_parser("relink", help="point a workspace at the new place of its originals")
    p.add_argument("workspace", help="workspace file")
    p.add_argument("old", help="folder the originals were recorded in")
    p.add_argument("new", help="folder they are in now (each file is checked by sha256)")
    p.set_defaults(func=cmd_relink)


ACCEPT_EPILOG = f"""\
A rule compares stored metrics with numbers, joined by and, or, not (never run as code):
  studio accept w.studio --rule "distance >= 0.6"
  studio accept w.studio --rule "distance >= 0.6 and arcface_similarity < 0.37"
  studio accept w.studio --rule "distance >= 0.65 and smile_kept and face_found" \\
      --best-per-face
  studio accept w.studio --rule 'abs_d_yaw <= 5 and method == "{IN_CONTEXT}"' --dry-run
A metric with no value (no face found in the surrogate) makes a comparison unknown, and
an unknown rule does not pass (not even under "not"). The names:
"""


def _register_accept(sub: argparse._SubParsersAction) -> None:
    from studio.core.workspace.rules import names_help  # no heavy imports: help stays quick

    p = sub.add_parser(
        "accept", help="accept, in bulk, the candidates that pass a rule over their metrics",
        description="Accept the undecided candidates that pass a rule, as one step that "
        "--undo reverts whole.\nExit 2 on a bad rule, bad usage, or an --undo whose last "
        "step is not a bulk accept.", epilog=ACCEPT_EPILOG + names_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workspace", help="workspace file")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--rule", help='e.g. "distance >= 0.65 and smile_kept and face_found"')
    what.add_argument("--undo", action="store_true",
                      help="revert the last bulk accept, every candidate of it, as one step")
    p.add_argument("--best-per-face", action="store_true",
                   help="accept one per face: of its passing candidates, the one with the "
                        "highest distance (the others stay undecided); a face that already "
                        "has an accepted candidate gets no other")
    p.add_argument("--dry-run", action="store_true", help="say what would be accepted; write "
                                                          "nothing")
    p.add_argument("--override", action="store_true",
                   help="accept passing candidates that were rejected too (without it, "
                        "decided candidates are left alone)")
    p.set_defaults(func=cmd_accept)


def cmd_accept(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.core.workspace.rules import accept_by_rule, parse_rule
    from studio.core.workspace.store import Workspace

    if args.undo:
        if args.best_per_face or args.dry_run or args.override:
            raise StudioError("--undo takes no other option")
        with Workspace(args.workspace) as ws, ws.deciding():  # what is said is what goes
            step = ws.last_step()
            if step is None:
                raise StudioError(f"nothing to undo in {args.workspace}")
            if step.bulk is None:
                raise StudioError(
                    f"the last change in {args.workspace} is a single decision (candidate "
                    f"{step.candidate_ids[0]}), not a bulk accept; undo it in the curation "
                    "window (Ctrl+Z) first. Nothing was changed.")
            ws.undo_step()
        print(f"undone: {step.what} ({len(step.candidate_ids)} candidates back to their "
              "earlier decision)")
        return 0
    rule = parse_rule(args.rule)  # a bad rule is said before the workspace is opened
    with Workspace(args.workspace) as ws:
        report = accept_by_rule(ws, rule, best_per_face=args.best_per_face,
                                dry_run=args.dry_run, override=args.override)
    for line in report.lines():
        print(line)
    if args.dry_run:
        print("dry run: nothing was written")
    elif report.bulk is not None:
        print(f"one step: `studio accept {args.workspace} --undo` reverts it whole")
    return 0


def cmd_batch(args: argparse.Namespace) -> int:
    from studio.core.errors import StudioError
    from studio.core.surrogates.making import check_methods
    from studio.core.workspace.batch import batch_photos
    from studio.core.workspace.guard import guarded_batch
    from studio.core.workspace.store import Workspace

    methods = tuple(split_list(args.methods))
    check_methods(methods)
    if args.candidates < 1:
        raise StudioError("--candidates must be 1 or more")
    address, workers = ray_options(args)  # Ray checked to be installed, with --ray
    batch_photos(args.folder)  # a workspace is made only when the folder holds photos
    created = not Path(args.workspace).exists()
    Workspace(args.workspace, create=True).close()  # refused here if damaged or foreign
    try:
        with progress_for(args) as progress:
            if address is not None:  # Ray's workers analyse, this process writes
                from studio.core.workspace.scale import ray_batch

                with Workspace(args.workspace) as ws:
                    report = ray_batch(args.folder, ws, candidates=args.candidates,
                                       methods=methods, progress=progress, address=address,
                                       workers=workers or None)
            else:
                # In a child process, so that a photo that crashes native code is recorded
                # as unreadable and the batch goes on (core.workspace.guard).
                report = guarded_batch(args.folder, args.workspace,
                                       candidates=args.candidates, methods=methods,
                                       workers=workers, progress=progress,
                                       min_face=args.min_face)
        with Workspace(args.workspace) as ws:
            summary = ws.summary()
    except BaseException:
        if created and _discard_if_empty(args.workspace):
            print(f"(the new workspace {args.workspace} was empty and has been removed)",
                  file=sys.stderr)
        raise
    for crash in report.crashes:
        print(f"  {crash}; a new {'worker' if address else 'process'} took over",
              file=sys.stderr)
    for problem in report.problems:
        print(f"  {problem}", file=sys.stderr)
    for copy, original in report.duplicates:
        print(f"  {copy}: identical to {original}, recorded once", file=sys.stderr)
    print(f"{report.originals} photos ({report.skipped_done} already done, "
          f"{report.unreadable} unreadable, {report.no_face} without a face, "
          f"{len(report.duplicates)} duplicates), "
          f"{report.faces} faces, {report.candidates} candidates in {report.seconds:.1f} s "
          f"({report.faces_per_second:.2f} faces/s)")
    print(f"workspace {args.workspace}: {json.dumps(summary)}")
    return 1 if report.inputs_failed else 0


def _discard_if_empty(path: str) -> bool:
    from studio.core.workspace.store import Workspace, WorkspaceError

    try:
        return Workspace(path).discard_if_empty()
    except WorkspaceError:
        return False


def cmd_export(args: argparse.Namespace) -> int:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.crowd.formats import read_truth
    from studio.core.workspace.export import check_export, export_batch
    from studio.core.workspace.store import Workspace

    truth = None
    if args.truth:
        truth, problems = read_truth(Path(args.truth))
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
    formats = tuple(split_list(args.format))
    # The options, the workspace and every place written to are checked before the
    # analyser is loaded and the identity gate measures each candidate (the slow part).
    check_export(args.out_dir, args.mapping, formats, args.base_url, args.gold, truth,
                 args.local_files_root)
    with Workspace(args.workspace) as ws, FaceAnalyzer() as analyzer:
        report = export_batch(
            ws, args.out_dir, analyzer, formats=formats,
            base_url=args.base_url, mapping=args.mapping, truth=truth, gold=args.gold,
            repeats=args.repeat, expressions=args.expressions, seed=args.seed,
            local_root=args.local_files_root)
    for line in report.refused:
        print(f"REFUSED by the identity gate: {line}", file=sys.stderr)
    if report.set_aside:
        print(f"{report.set_aside} damaged candidate row(s) of this salvaged workspace were "
              "set aside and not exported", file=sys.stderr)
    print(f"exported {report.items} items, {report.gold} gold, {report.repeats} repeats "
          f"-> {report.out_dir}")
    print(f"private mapping (keep it away from workers) -> {report.mapping}")
    return 1 if report.refused else 0


def cmd_relink(args: argparse.Namespace) -> int:
    from studio.core.workspace.store import Workspace

    with Workspace(args.workspace) as ws:
        report = ws.relink(args.old, args.new)
    for path in report.missing:
        print(f"  not found under {report.new}, left as it was: {path}", file=sys.stderr)
    for path in report.different:
        print(f"  a different file (sha256) under {report.new}, left as it was: {path}",
              file=sys.stderr)
    print(f"{report.relinked} originals now under {report.new}")
    return 1 if report.missing or report.different else 0
