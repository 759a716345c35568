"""The crowd report: matplotlib figures, a self-contained index.html and summary.json.

Figures are plain matplotlib Figures on an Agg canvas (no pyplot, no global backend switch), so
the app can put the same objects in a Qt tab later and the CLI can save them as PNG headless.
"""

from __future__ import annotations

import html
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from studio.core.assets import write_atomic
from studio.core.crowd.formats import BASIC_EXPRESSIONS, VERSION_STYLES
from studio.core.crowd.statistics import BIN_WIDTH, JOY_CLIP, CrowdAnalysis
from studio.core.errors import StudioError
from studio.core.report_html import figure, fmt, page, table

COLORS = {version: colour for version, (_, colour) in VERSION_STYLES.items()}
LABELS = {version: label for version, (label, _) in VERSION_STYLES.items()}
FIGURES = {  # file stem -> caption
    "accuracy": "Average accuracy (95% CI, clustered by image) and majority-vote accuracy "
                "overall and among images reaching 75% and 90% consensus.",
    "differences": "Per-image differences in correct counts between versions, with mean and "
                   "95% CI; the one-sample t-tests ask whether the mean differs from 0.",
    "workers": "Majority-vote accuracy against the number of workers sampled per image "
               "(mean over random draws; ties count 0.5).",
    "joy": f"Per-image accuracy against joy evidence (logit of the original's joy); lines: "
           f"means in {BIN_WIDTH}-wide bins.",
}


def _label(version: str) -> str:
    return LABELS.get(version, version)


def accuracy_figure(a: CrowdAnalysis) -> Figure:
    fig = figure()
    ax = fig.add_subplot()
    groups = ["average", "majority", "majority, ≥75%", "majority, ≥90%"]
    width = 0.8 / max(1, len(a.versions))
    for i, v in enumerate(a.versions):
        levels = {c.level: c for c in a.consensus if c.version == v.version}
        values = [v.accuracy, *(levels[lv].majority_accuracy if lv in levels else np.nan
                                for lv in (0.5, 0.75, 0.9))]
        x = np.arange(len(groups)) + (i - (len(a.versions) - 1) / 2) * width
        err = np.array([[v.accuracy - v.ci_low, 0, 0, 0], [v.ci_high - v.accuracy, 0, 0, 0]])
        ax.bar(x, values, width, color=COLORS.get(v.version), label=_label(v.version),
               yerr=np.nan_to_num(err), capsize=3)
        for xi, lv in zip(x[2:], (0.75, 0.9), strict=True):  # how many images reach the level
            if lv in levels:
                c = levels[lv]
                ax.text(xi, 0.03, f"{c.n_reached}/{c.n_images} images", ha="center",
                        va="bottom", fontsize=7, rotation=90,
                        color="white" if c.n_reached else "#444")
    ax.axhline(0.5, color="#888", lw=0.8, ls="--")
    ax.set_xticks(np.arange(len(groups)), groups)
    ax.set_xlim(-0.5, len(groups) - 0.5)
    ax.set_ylim(0, 1.15)
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper center", ncol=max(1, len(a.versions)), fontsize=8, frameon=False)
    fig.tight_layout()
    return fig


def differences_figure(a: CrowdAnalysis) -> Figure:
    fig = figure()
    ax = fig.add_subplot()
    correct = {(i.original_key, i.version): i.n_correct for i in a.images}
    rng = np.random.default_rng(0)  # jitter only
    for x, t in enumerate(a.tests):
        keys = sorted(k for k, v in correct if v == t.a and (k, t.b) in correct)
        d = np.array([correct[(k, t.a)] - correct[(k, t.b)] for k in keys], dtype=float)
        ax.scatter(x + rng.uniform(-0.2, 0.2, len(d)), d, s=10, alpha=0.5, color="#666")
        if t.n > 1 and np.isfinite(t.sd_difference):
            half = 1.96 * t.sd_difference / np.sqrt(t.n)
            ax.errorbar(x, t.mean_difference, yerr=half, fmt="o", color="#c0392b", capsize=6)
    ax.axhline(0, color="#888", lw=0.8, ls="--")
    ax.set_xticks(range(len(a.tests)),
                  [f"{_label(t.a)} − {_label(t.b)}\nt = {t.t:.2f}, p = {t.p:.3g}"
                   for t in a.tests], fontsize=8)
    ax.set_ylabel("difference in correct answers per image")
    fig.tight_layout()
    return fig


def workers_figure(a: CrowdAnalysis) -> Figure:
    fig = figure()
    ax = fig.add_subplot()
    for c in a.curves:
        ax.plot(c.k, c.accuracy, "-o", ms=3, color=COLORS.get(c.version), label=_label(c.version))
    ax.set_xlabel("workers sampled per image (k)")
    ax.set_ylabel("majority-vote accuracy")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def joy_figure(a: CrowdAnalysis) -> Figure:
    fig = figure()
    ax = fig.add_subplot()
    for v in a.versions:
        imgs = [i for i in a.images if i.version == v.version and i.evidence is not None]
        color = COLORS.get(v.version)
        ax.scatter([i.evidence for i in imgs], [i.accuracy for i in imgs], s=12, alpha=0.45,
                   color=color, label=_label(v.version))
        bins = [b for b in a.joy_bins if b.version == v.version]
        ax.plot([b.low + BIN_WIDTH / 2 for b in bins], [b.mean_accuracy for b in bins], "-",
                color=color, lw=2)
    ax.axvline(0, color="#888", lw=0.8, ls="--")
    ax.set_xlabel("joy evidence, log(joy / (1 − joy)) of the original")
    ax.set_ylabel("per-image accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def make_figures(analysis: CrowdAnalysis) -> dict[str, Figure]:
    """The report's figures by name (the PNG file stem), for the report and the app."""
    return {"accuracy": accuracy_figure(analysis), "differences": differences_figure(analysis),
            "workers": workers_figure(analysis), "joy": joy_figure(analysis)}


@dataclass
class ReportFiles:
    index: Path
    summary: Path
    figures: dict[str, Path]


def _p(x: float) -> str:
    return "–" if not np.isfinite(x) else "&lt; 0.001" if x < 0.001 else f"{x:.3f}"


def render_html(a: CrowdAnalysis, figure_files: dict[str, str]) -> str:
    """The report page; every text from the input files is escaped."""
    e = html.escape
    parts = [f"<h1>Crowd report</h1><p>{e(a.source)} ({e(a.format)}): {a.n_records} records, "
             f"{a.n_answers} answers kept, {len(a.problems)} problems"
             + "".join(f", {n} skipped ({e(k)})" for k, n in sorted(a.skipped.items()))
             + ".</p>"]
    machine = [[e(f"the studio, on the {m.what if m.what == 'original photo' else _label(m.what)}"),
                str(m.n_images), "–", str(m.n_correct), fmt(m.accuracy),
                f"{fmt(m.ci_low)} – {fmt(m.ci_high)}"] for m in a.machine]
    parts.append("<h2>Accuracy per version</h2>" + table(
        ["version", "images", "answers", "correct", "average accuracy", "95% CI"],
        [[e(_label(v.version)), str(v.n_images), str(v.n_answers), str(v.n_correct),
          fmt(v.accuracy), f"{fmt(v.ci_low)} – {fmt(v.ci_high)}"] for v in a.versions]
        + machine))
    parts.append("<p class='note'>Average accuracy pools all answers; its CI treats the answers "
                 "on one image as a cluster (ratio estimator, t with images − 1 df). Gold and "
                 "repeat items are left out. The studio rows are the machine baseline: its own "
                 "smile decision (joy ≥ 0.5) on the same items, one answer per image (Wilson "
                 "95% CI), as the thesis reported Emotient's 83.3%.</p>")
    if not a.originals_shown:
        parts.append("<p class='note'><strong>No original row:</strong> the originals were not "
                     "shown to the crowd (they are exported only when they may be shown: "
                     "<code>studio study --originals-may-be-shown</code>), so accuracy on the "
                     "originals and the tests against them are not available. The studio's "
                     "decision on the original photos is still given.</p>")
    parts.append("<h2>Majority vote and consensus</h2>" + table(
        ["version", "consensus", "images reaching it", "majority-vote accuracy"],
        [[e(_label(c.version)), "overall" if c.level <= 0.5 else f"≥ {c.level:.0%}",
          f"{c.n_reached} / {c.n_images}", fmt(c.majority_accuracy)] for c in a.consensus]))
    parts.append("<p class='note'>Consensus is the share of an image's answers that agree with "
                 "its majority label; a tied vote scores 0.5.</p>")
    parts.append("<h2>Aggregated labels</h2>" + table(
        ["version", "images", "majority vote", "Dawid–Skene"],
        [[e(_label(g.version)), str(g.n_images), fmt(g.majority), fmt(g.dawid_skene)]
         for g in a.aggregates]))
    parts.append("<p class='note'>Accuracy of one aggregated label per image, both from "
                 "crowd-kit: MajorityVote (ties score 0.5) and DawidSkene, which weighs each "
                 "worker by an estimated confusion matrix fitted over all versions.</p>")
    parts.append("<h2>Paired t-tests</h2>" + table(
        ["versions (a − b)", "n images", "mean difference", "SD", "t", "p"],
        [[e(f"{_label(t.a)} − {_label(t.b)}"), str(t.n), fmt(t.mean_difference, 2),
          fmt(t.sd_difference, 2), fmt(t.t, 2), _p(t.p)] for t in a.tests]))
    parts.append("<p class='note'>One-sample t-tests (scipy.stats.ttest_1samp against 0) on "
                 "per-image differences of correct counts.</p>")
    titles = {"accuracy": "Accuracy plot", "differences": "Per-image differences",
              "workers": "Majority vote against workers sampled",
              "joy": "Accuracy against joy evidence"}
    for name, caption in FIGURES.items():
        parts.append(f"<h2>{titles[name]}</h2>")
        if name in figure_files:
            parts.append(f"<figure><img src='{e(figure_files[name])}' alt='{e(name)}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
        if name == "workers" and a.curves:
            ks = sorted({k for c in a.curves for k in c.k if k in (1, 3, 5) or k % 10 == 0}
                        | {max(c.k) for c in a.curves})
            head = ["k", *(e(_label(c.version)) for c in a.curves)]
            rows = [[str(k), *(fmt(c.accuracy[k - 1]) if k <= len(c.k) else "–"
                               for c in a.curves)] for k in ks]
            parts.append(table(head, rows))
        if name == "joy":
            parts.append(f"<p class='note'>Joy evidence is log(joy / (1 − joy)) of the original "
                         f"face's joy (clipped to [{JOY_CLIP}, {1 - JOY_CLIP}]): on this logit "
                         f"scale {BIN_WIDTH}-wide bins are equal steps in the odds of a smile. "
                         f"{a.n_images_without_joy} images have no joy value.</p>")
            parts.append(table(
                ["version", "evidence bin", "images", "mean accuracy"],
                [[e(_label(b.version)), f"[{b.low:+.1f}, {b.high:+.1f})", str(b.n_images),
                  fmt(b.mean_accuracy)] for b in a.joy_bins]))
    if a.expressions:
        parts.append("<h2>Seven basic expressions</h2>" + table(
            ["version", "answers", *BASIC_EXPRESSIONS, "majority as the original's"],
            [[e(_label(x.version)), str(x.n_answers), *(fmt(x.shares[n]) for n in
                                                        BASIC_EXPRESSIONS),
              f"{fmt(x.agree_with_original)} ({x.n_compared})" if x.n_compared else "–"]
             for x in a.expressions]))
        parts.append("<p class='note'>Shares of the answers to the second question; the last "
                     "column: how often a version's majority expression (crowd-kit "
                     "MajorityVote) is the one the crowd gave the original.</p>")
    parts.append("<h2>Workers</h2>")
    low = ", ".join(e(w) for w in a.low_gold_workers) or "none"
    parts.append(f"<p>Workers below 50% on gold items: {low}.</p>" + table(
        ["worker", "answers", "study items", "accuracy", "Dawid–Skene estimate", "gold",
         "gold accuracy", "repeat pairs", "self-consistency"],
        [[e(w.worker), str(w.n_answers), str(w.n_items), fmt(w.item_accuracy),
          fmt(w.ds_accuracy), str(w.n_gold), fmt(w.gold_accuracy), str(w.n_repeat_pairs),
          fmt(w.consistency)] for w in a.workers]))
    parts.append(f"<h2>Problems ({len(a.problems)})</h2>")
    parts.append("<ul>" + "".join(f"<li>{e(p)}</li>" for p in a.problems) + "</ul>"
                 if a.problems else "<p>None.</p>")
    return page("Crowd report", parts)


def report_files(out_dir: Path) -> list[Path]:
    """The files a report writes in OUT_DIR that are there already."""
    names = ["index.html", "summary.json", *(f"{name}.png" for name in FIGURES)]
    return [Path(out_dir) / n for n in names if (Path(out_dir) / n).exists()]


def check_report_folder(out_dir: Path, overwrite: bool = False) -> None:
    """A StudioError when OUT_DIR holds a report already (or any file a report writes), unless
    it may be overwritten: an earlier report is never replaced by accident."""
    there = report_files(out_dir)
    if there and not overwrite:
        raise StudioError(f"{out_dir} already holds a crowd report ({there[0].name}); choose a "
                          "new folder or pass --overwrite")


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", errors="backslashreplace")


def write_report(analysis: CrowdAnalysis, out_dir: Path) -> ReportFiles:
    """OUT_DIR/index.html, OUT_DIR/summary.json and one PNG per figure, each written whole
    or not at all (``assets.write_atomic``), the index last.

    A place that cannot be written is a StudioError (callers check it before the analysis
    with check_writable_dir; this catches what changes or fails in between, e.g. a full
    disk). Text from the input files is written as UTF-8; what cannot be encoded (lone
    surrogates from a JSON \\ud800 escape) is written as a backslash escape.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        figures = {}
        for name, fig in make_figures(analysis).items():
            figures[name] = out_dir / f"{name}.png"
            png = io.BytesIO()
            fig.savefig(png, format="png")
            write_atomic(figures[name], png.getvalue())
        summary = analysis.to_dict()
        summary["figures"] = {name: path.name for name, path in figures.items()}
        summary_path = out_dir / "summary.json"
        write_atomic(summary_path, _utf8(json.dumps(summary, indent=1, ensure_ascii=False)
                                         + "\n"))
        index = out_dir / "index.html"  # last: a report with its index is whole
        write_atomic(index, _utf8(render_html(analysis,
                                              {n: p.name for n, p in figures.items()})))
    except OSError as exc:
        raise StudioError(f"cannot write the crowd report to {out_dir}: "
                          f"{exc.strerror or exc}") from None
    return ReportFiles(index, summary_path, figures)
