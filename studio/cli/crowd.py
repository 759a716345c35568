"""``studio crowd-report`` and ``power``: the crowd study, planned and analysed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from studio.cli.options import add_seed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("crowd-report", help="analyse crowd smile labels (MTurk or Label Studio)")
    p.add_argument("results", help="MTurk batch-results CSV or Label Studio JSON export")
    p.add_argument("out_dir", help="where index.html, summary.json and the PNGs go")
    p.add_argument("--truth", required=True, help="CSV original_key,label (smile/no_smile)")
    p.add_argument("--mapping", required=True, help="the private item mapping CSV")
    add_seed(p, help="seed of the workers-sampled draws")
    p.add_argument("--draws", type=int, default=10, help="random draws per k workers")
    p.set_defaults(func=cmd_crowd_report)

    p = sub.add_parser("power", help="simulated power of the paired t-test over workers x images")
    p.add_argument("--p1", type=float, default=0.60, help="worker accuracy on one version")
    p.add_argument("--p2", type=float, default=0.65, help="worker accuracy on the other")
    p.add_argument("--reps", type=int, default=1000, help="simulated studies per cell")
    p.add_argument("--alpha", type=float, default=0.05)
    add_seed(p)
    p.add_argument("--out", default="power", help="directory for power.csv and power.png")
    p.set_defaults(func=cmd_power)


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
    for t in a.tests:
        print(f"  {t.a} - {t.b}: mean difference {t.mean_difference:+.2f}, t = {t.t:.2f}, "
              f"p = {t.p:.3g}, n = {t.n}")


def cmd_crowd_report(args: argparse.Namespace) -> int:
    from studio.core.assets import check_writable_dir

    if args.draws < 1:
        print("error: --draws must be at least 1", file=sys.stderr)
        return 2
    check_writable_dir(args.out_dir, "the crowd report")  # before the work, not after it

    from studio.core.crowd.report import write_report
    from studio.core.crowd.statistics import load_and_analyze

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
