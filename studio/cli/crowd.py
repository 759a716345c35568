"""``studio study``, ``crowd-report`` and ``power``: the crowd study, built, analysed and
planned."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.options import add_min_face, add_quiet, add_seed, progress_for, split_list

STUDY_EPILOG = """\
The study folder holds only what workers may see: images/<random id>.png, mturk.csv with
mturk_layout.html (paste it into MTurk's Design Layout; ${image_url} is mturk.csv's
column), labelstudio_tasks.json with labelstudio_config.xml, and plan.csv (which worker
slot sees which item, in which order). Beside it, owner-only: OUT_DIR.private-mapping.csv
(item -> original and version) and OUT_DIR.private-truth.csv (fill in label: smile or
no_smile). Then: studio crowd-report RESULTS REPORT_DIR --mapping OUT_DIR.private-mapping.csv
--truth OUT_DIR.private-truth.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    from studio.core.crowd.design import FULL_DESIGN_LIMIT

    p = sub.add_parser(
        "study", help="build a crowd validation study: stratified originals, every version",
        description="Choose originals stratified by joy evidence (equal numbers from 0.5-wide "
        "bins of logit(joy)), make every surrogate of each (GAN, 3D, in context), and write a "
        "crowd batch with an MTurk layout, Label Studio tasks and a plan of who sees what. "
        "The photos are only read. Exit 2 on bad usage.", epilog=STUDY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("folder", help="folder of face photos (read only, searched recursively)")
    p.add_argument("out_dir", help="new folder for the study (must not exist)")
    p.add_argument("--originals", type=int, default=60, help="originals to choose (M)")
    p.add_argument("--workers", type=int, default=60, help="workers planned for")
    p.add_argument("--originals-may-be-shown", action="store_true",
                   help="the photos are public or consented: show the originals too (by "
                        "default they are never exported, and the report has no original row)")
    p.add_argument("--max-per-worker", type=int, default=FULL_DESIGN_LIMIT,
                   help="every worker sees every item while the items are at most this many; "
                        "past it, a balanced assignment")
    p.add_argument("--per-item", type=int, default=None,
                   help="balanced assignment: workers per item (default: the most that keeps "
                        "each worker within --max-per-worker)")
    p.add_argument("--format", default="both",
                   help="mturk, labelstudio, or both (mturk,labelstudio; the default)")
    add_min_face(p)
    p.add_argument("--base-url", default="",
                   help="the http(s) address OUT_DIR will be served from")
    p.add_argument("--local-files-root", default=None,
                   help="Label Studio's LOCAL_FILES_DOCUMENT_ROOT, a folder above OUT_DIR "
                        "(not OUT_DIR itself): tasks use its /data/local-files/?d= form "
                        "instead of --base-url (with --format labelstudio)")
    p.add_argument("--mapping", default=None, help="private mapping (default: beside OUT_DIR)")
    p.add_argument("--expressions", action="store_true",
                   help="also ask for one of seven basic expressions (Label Studio)")
    add_seed(p, default=None, help="the choice, item ids and orders are random")
    add_quiet(p)
    p.set_defaults(func=cmd_study)

    p = sub.add_parser("crowd-report", help="analyse crowd smile labels (MTurk or Label Studio)",
                       description="Analyse a crowd's smile labels. Exit 2 on bad usage or a "
                       "file that cannot be read as a whole (nothing is written), 1 when no "
                       "answer could be used.")
    p.add_argument("results", help="MTurk batch-results CSV, or a Label Studio export (JSON, "
                                   "JSON-MIN or CSV)")
    p.add_argument("out_dir", help="where index.html, summary.json and the PNGs go")
    p.add_argument("--truth", required=True, help="CSV original_key,label (smile/no_smile)")
    p.add_argument("--mapping", required=True, help="the private item mapping CSV")
    add_seed(p, help="seed of the workers-sampled draws")
    p.add_argument("--draws", type=int, default=10, help="random draws per k workers")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the report already in OUT_DIR (without it, refused)")
    p.set_defaults(func=cmd_crowd_report)

    p = sub.add_parser("power", help="simulated power of the paired t-test over workers x images")
    p.add_argument("--p1", type=float, default=0.60, help="worker accuracy on one version")
    p.add_argument("--p2", type=float, default=0.65, help="worker accuracy on the other")
    p.add_argument("--reps", type=int, default=1000, help="simulated studies per cell")
    p.add_argument("--alpha", type=float, default=0.05)
    add_seed(p)
    p.add_argument("--out", default="power", help="directory for power.csv and power.png")
    p.set_defaults(func=cmd_power)


def cmd_study(args: argparse.Namespace) -> int:
    from studio.core.workspace.batch import batch_photos
    from studio.core.workspace.export import ExportError, crowd_formats
    from studio.core.workspace.study import check_study, originals_in, study_versions

    formats = crowd_formats(split_list(args.format))
    # Options, photos and every place written to are checked before the models load.
    check_study(args.out_dir, args.originals, args.workers, formats, args.base_url,
                args.local_files_root, args.mapping, args.originals_may_be_shown,
                args.per_item, args.max_per_worker)
    photos, in_batches = originals_in(batch_photos(args.folder).images)
    if not photos:
        raise ExportError(f"{args.folder} holds no photos besides the {in_batches} pictures of "
                          "crowd batches (studies or exports) inside it")

    from studio.core.surrogates.engine import SurrogateEngine
    from studio.core.workspace.study import build_study

    engine = SurrogateEngine(min_face=args.min_face)
    try:
        with progress_for(args) as progress:
            r = build_study(photos, args.out_dir, engine, m=args.originals,
                            workers=args.workers, formats=formats, base_url=args.base_url,
                            local_root=args.local_files_root, mapping=args.mapping,
                            originals_may_be_shown=args.originals_may_be_shown,
                            per_item=args.per_item, max_per_worker=args.max_per_worker,
                            expressions=args.expressions, seed=args.seed, progress=progress)
    finally:
        engine.close()
    for line in r.unusable + r.set_aside:
        print(f"  set aside: {line}", file=sys.stderr)
    if in_batches:
        print(f"  {in_batches} pictures of crowd batches (an earlier study or export inside "
              f"{args.folder}) were not taken as originals", file=sys.stderr)
    bins = ", ".join(f"[{b:+.1f}, {b + 0.5:+.1f}): {n}" for b, n in sorted(r.bins.items()))
    print(f"{len(r.chosen)} originals by joy evidence ({bins})")
    print(f"{r.items} items: {', '.join(study_versions(args.originals_may_be_shown))}"
          + ("" if args.originals_may_be_shown else " (the originals are not shown: no "
             "original row in the report)"))
    what = "every worker sees every item" if r.design == "full" else \
        f"balanced: each item seen by {r.per_item} workers"
    print(f"{r.workers} workers, {what}, {r.loads[0]}-{r.loads[1]} items each, in a random "
          "order per worker (plan.csv)")
    print(f"study -> {r.out_dir}")
    print(f"private mapping and truth sheet (keep them away from workers) -> {r.mapping}, "
          f"{r.truth}")
    return 0


def _print_crowd_analysis(a) -> None:
    skipped = "".join(f", {n} skipped ({why})" for why, n in sorted(a.skipped.items()))
    print(f"{a.source} ({a.format}): {a.n_records} records, {a.n_answers} answers kept{skipped}")
    if a.problems:
        print(f"problems: {len(a.problems)} (all listed in the report); the first ones:")
        for problem in a.problems[:5]:
            print(f"  {problem}")
    for v in a.versions:
        print(f"  {v.version:8s} accuracy {v.accuracy:.3f} (95% CI {v.ci_low:.3f}-{v.ci_high:.3f})"
              f"  {v.n_images} images, {v.n_answers} answers")
    for m in a.machine:
        print(f"  the studio on the {m.what}: accuracy {m.accuracy:.3f} (95% CI "
              f"{m.ci_low:.3f}-{m.ci_high:.3f}), {m.n_images} images")
    for g in a.aggregates:
        print(f"  {g.version:8s} majority vote {g.majority:.3f}, Dawid-Skene {g.dawid_skene:.3f}")
    for t in a.tests:
        print(f"  {t.a} - {t.b}: mean difference {t.mean_difference:+.2f}, t = {t.t:.2f}, "
              f"p = {t.p:.3g}, n = {t.n}")
    if a.images and not a.originals_shown:
        print("  (the originals were not shown: no original row)")


def cmd_crowd_report(args: argparse.Namespace) -> int:
    from studio.core.assets import check_writable_dir

    if args.draws < 1:
        print("error: --draws must be at least 1", file=sys.stderr)
        return 2
    check_writable_dir(args.out_dir, "the crowd report")  # before the work, not after it

    from studio.core.crowd.report import check_report_folder, write_report
    from studio.core.crowd.statistics import load_and_analyze

    check_report_folder(Path(args.out_dir), args.overwrite)

    # Worker ids and file names may hold text the terminal cannot show (a JSON "\\ud800"):
    # escape it rather than fail after the analysis.
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    a = load_and_analyze(Path(args.results), Path(args.mapping), Path(args.truth),
                         seed=args.seed, draws=args.draws)
    _print_crowd_analysis(a)
    files = write_report(a, Path(args.out_dir))
    print(f"report -> {files.index}")
    return 0 if a.n_answers else 1


def cmd_power(args: argparse.Namespace) -> int:
    from studio.core.crowd.power import plot_power, simulate_power

    if not (0 <= args.p1 <= 1 and 0 <= args.p2 <= 1 and 0 < args.alpha < 1 and args.reps > 0):
        print("error: p1 and p2 must be in [0, 1], alpha in (0, 1), reps > 0", file=sys.stderr)
        return 2
    grid = simulate_power(args.p1, args.p2, args.reps, args.alpha, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print("\n".join(grid.summary_lines()))
    print(grid.write_csv(out / "power.csv"))
    plot_power(grid, out / "power.png")
    print(out / "power.png")
    return 0
