"""The evaluation as a report: HTML and Markdown tables, plots, a per-face CSV, JSON."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from studio.core.analysis.attributes import NAMES
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.evaluation.methods import METHODS
from studio.core.evaluation.study import EvaluationRun
from studio.core.evaluation.summary import BARS, MethodResult
from studio.core.report_html import figure, fmt, page, table

FAMILY_COLORS = {"original": "#555555", "gan": "#dd8452", "3d": "#55a868", "blur": "#4c72b0",
                 "pixelate": "#8172b3", "mask": "#222222"}


def _style(method: str) -> dict:
    """Colour by family; the light strength of a naive method dashed, the strong solid."""
    m = METHODS[method]
    return {"color": FAMILY_COLORS[m.family], "linestyle": "--" if m.light else "-"}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _pct(x: float | None) -> str:
    """A share in percent; small ones (attack rates near chance) with two decimals."""
    if x is None or not np.isfinite(x):
        return "–"
    return f"{100 * x:.2f}%" if 0 < x < 0.01 else f"{100 * x:.1f}%"


# -- tables -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Table:
    title: str
    head: list[str]
    rows: list[list[str]]
    note: str = ""


def tables(results: list[MethodResult]) -> list[Table]:
    """Utility, ground truth and privacy tables for one data set's results."""
    out = [Table(
        "Utility: the output against the original's own estimate",
        ["method", "faces", "face found", "smile agreement", "joy r", "yaw err", "pitch err",
         "roll err", "gender agreement"],
        [[r.label, str(r.n), _pct(r.detection), _pct(r.smile_agreement),
          fmt(r.joy_correlation, 2), fmt(r.angle_error["yaw"], 1),
          fmt(r.angle_error["pitch"], 1), fmt(r.angle_error["roll"], 1),
          _pct(r.gender_agreement)] for r in results],
        "Smile agreement counts an output without a face as a lost smile; the other "
        "columns use outputs with a face. Angle errors are mean absolute differences in "
        "degrees.")]
    keys = [k for k in ("smile_accuracy", "yaw_error", "pitch_error", "roll_error",
                        "gender_accuracy") if any(k in r.truth for r in results)]
    if keys:
        names = {"smile_accuracy": "smile accuracy", "yaw_error": "yaw err",
                 "pitch_error": "pitch err", "roll_error": "roll err",
                 "gender_accuracy": "gender accuracy"}
        out.append(Table(
            "Utility: the output against ground truth",
            ["method", *(names[k] for k in keys)],
            [[r.label, *(_pct(r.truth.get(k)) if k.endswith("accuracy")
                         else fmt(r.truth.get(k), 1) for k in keys)] for r in results],
            "The data set's own labels; the original row is the face analysis itself."))
    rows = []
    for r in results:
        a1, a2 = r.attack1, r.attack2
        rows.append([
            r.label, _pct(r.deidentified), fmt(r.median_distance, 3),
            _pct(r.tar_at_far_1e3), fmt(r.roc.auc if r.roc else None, 3),
            "–" if a1 is None else f"{_pct(a1.rates[1])} ({a1.over_chance[1]:.1f}× chance)",
            "–" if a1 is None else f"{_pct(a1.rates[5])} ({a1.over_chance[5]:.1f}×)",
            _pct(r.attack1_other_photo),
            "–" if a2 is None else f"{_pct(a2.accuracy)} ({a2.accuracy / a2.chance:.1f}×)"])
    chance = next((r.attack1 for r in results if r.attack1 is not None), None)
    note = (f"De-identified: share of outputs (with a descriptor) at least "
            f"{SAME_PERSON_THRESHOLD} from their original, dlib's different-person threshold. "
            "TAR at FAR 1e-3: genuine pairs are original and output of the same face, "
            "impostors pairs of different people.")
    if chance is not None:
        note += (f" Attack I: every output identified in a gallery of "
                 f"{chance.gallery_size} originals, one per person (chance rank-1 "
                 f"{_pct(chance.chance[1])}, rank-5 {_pct(chance.chance[5])}); 'other photo' "
                 "is rank-1 for outputs of a photo that is not the gallery's. Attack II: "
                 "a classifier trained on outputs of known people identifies their other "
                 "outputs.")
    out.append(Table("Privacy", ["method", "de-identified", "median distance",
                                 "TAR @ FAR 1e-3", "AUC", "attack I rank-1", "rank-5",
                                 "rank-1, other photo", "attack II"], rows, note))
    return out


def checks(results: list[MethodResult]) -> list[tuple[str, str, str, bool]]:
    """The issue's bars on the GAN surrogate: (data set, measure, value and bar, passed)."""
    names = {"deidentified": ("de-identified share", f">= {BARS['deidentified']:.0%}"),
             "smile_agreement": ("smile agreement", f">= {BARS['smile_agreement']:.0%}"),
             "rank1_over_chance": ("attack I rank-1 over chance",
                                   f"<= {BARS['rank1_over_chance']:.0f}×")}
    out = []
    for r in results:
        if r.method != "gan":
            continue
        for key, (value, ok) in r.checks().items():
            name, bar = names[key]
            shown = f"{value:.2f}×" if key == "rank1_over_chance" else _pct(value)
            out.append((r.dataset, name, f"{shown} (bar {bar})", ok))
    return out


# -- figures ------------------------------------------------------------------------------


def distance_figure(results: list[MethodResult]) -> Figure:
    fig = figure(7.5, 4.2)
    ax = fig.add_subplot()
    bins = np.linspace(0, 1.2, 49)
    for r in results:
        d = r.distances[np.isfinite(r.distances)]
        if r.method != "original" and d.size:
            ax.hist(d, bins=bins, histtype="step", density=True, lw=1.4, label=r.label,
                    **_style(r.method))
    ax.axvline(SAME_PERSON_THRESHOLD, color="#c62828", lw=1)
    ax.text(SAME_PERSON_THRESHOLD, ax.get_ylim()[1] * 0.97, " same person ← | → another",
            color="#c62828", fontsize=8, va="top")
    ax.set_xlabel("dlib distance, original to output")
    ax.set_ylabel("density")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def roc_figure(results: list[MethodResult]) -> Figure:
    fig = figure(6.5, 4.6)
    ax = fig.add_subplot()
    for r in results:
        if r.roc is None:
            continue
        far = np.maximum(r.roc.far, 1e-5)
        ax.step(far, r.roc.tar, where="post", lw=1.4,
                label=f"{r.label} (TAR {_pct(r.tar_at_far_1e3)})", **_style(r.method))
    ax.axvline(1e-3, color="#888", lw=0.8, ls=":")
    chance = np.logspace(-5, 0, 60)
    ax.plot(chance, chance, color="#bbb", lw=0.8)  # an attacker who guesses
    ax.set_xscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("false accept rate (impostor pairs)")
    ax.set_ylabel("true accept rate (original vs its output)")
    ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def label_places(results: list[MethodResult], near: float = 0.05
                 ) -> list[tuple[float, float, int]]:
    """Where each point's label goes on the trade-off plot: (x, y, line). Points that sit
    together share the first one's place, their labels stacked line by line below it (and
    coloured like their points, so they stay told apart)."""
    places: list[tuple[float, float, int]] = []
    for i, r in enumerate(results):
        first = next((j for j, o in enumerate(results[:i])
                      if abs(o.deidentified - r.deidentified) < near
                      and abs(o.smile_agreement - r.smile_agreement) < near), None)
        if first is None:
            places.append((r.deidentified, r.smile_agreement, 0))
        else:
            x, y, _ = places[first]
            places.append((x, y, 1 + sum(p[:2] == (x, y) for p in places[first + 1:])))
    return places


def tradeoff_figure(results: list[MethodResult]) -> Figure:
    """One point per method and strength: privacy across, utility up."""
    fig = figure(6.5, 4.6)
    ax = fig.add_subplot()
    for r, (x, y, line) in zip(results, label_places(results), strict=True):
        style = _style(r.method)
        hollow = METHODS[r.method].light
        ax.scatter([r.deidentified], [r.smile_agreement], s=70, zorder=3,
                   facecolors="white" if hollow else style["color"], edgecolors=style["color"],
                   linewidths=1.6)
        left = x > 0.6  # labels of points on the right go to their left
        ax.annotate(r.label, (x, y), fontsize=7, color=style["color"],
                    xytext=(-8 if left else 8, 4 - 10 * line), textcoords="offset points",
                    ha="right" if left else "left")
    ax.axvline(BARS["deidentified"], color="#bbb", lw=0.8, ls=":")
    ax.axhline(BARS["smile_agreement"], color="#bbb", lw=0.8, ls=":")
    ax.set_xlim(-0.03, 1.1)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel("de-identified share (distance ≥ 0.6 from the original)")
    ax.set_ylabel("smile agreement with the original")
    ax.set_title("privacy → , utility ↑ : the top right is where surrogates should sit",
                 fontsize=9)
    fig.tight_layout()
    return fig


FIGURES = {"tradeoff": (tradeoff_figure, "Privacy against utility, one point per method "
                        "and strength (hollow: the lighter strength)."),
           "distances": (distance_figure, "Identity distance from each original to its "
                         "output; right of the red line dlib takes them for different people."),
           "roc": (roc_figure, "Verification ROC of an attacker who compares outputs with "
                   "originals; lower is more private.")}


def by_dataset(results: list[MethodResult]) -> dict[str, list[MethodResult]]:
    out: dict[str, list[MethodResult]] = {}
    for r in results:
        out.setdefault(r.dataset, []).append(r)
    return out


# -- files --------------------------------------------------------------------------------


def write_csv(run: EvaluationRun, path: Path) -> None:
    """One row per source face and method: every measurement behind the tables."""
    fields = ("found", *NAMES)
    truth_keys = sorted({k for m in run.measurements for k in m.truth})
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "source", "identity", "method", *(f"truth_{k}" for k in truth_keys),
                    *(f"original_{f}" for f in fields[1:]), *(f"output_{f}" for f in fields),
                    "distance", "smile_kept"])
        for m in run.measurements:
            o, s = m.original, m.output
            d = (float(np.linalg.norm(o.descriptor - s.descriptor))
                 if o.descriptor is not None and s.descriptor is not None else None)
            w.writerow([m.dataset, m.source, m.identity, m.method,
                        *(m.truth.get(k, "") for k in truth_keys),
                        *(_cell(getattr(o, f)) for f in fields[1:]),
                        *(_cell(getattr(s, f)) for f in fields), _cell(d),
                        _cell(s.smiling == o.smiling)])


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return f"{v:.4f}" if isinstance(v, float) else str(v)


def _jsonable(x):
    """Plain JSON: numpy numbers as Python ones, NaN as null."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


def summary_dict(run: EvaluationRun, results: list[MethodResult]) -> dict:
    rows = []
    for r in results:
        row = {"dataset": r.dataset, "method": r.method, "label": r.label, "faces": r.n,
               "detection": r.detection, "smile_agreement": r.smile_agreement,
               "joy_correlation": r.joy_correlation, "angle_error": r.angle_error,
               "gender_agreement": r.gender_agreement, "truth": r.truth,
               "deidentified": r.deidentified, "median_distance": r.median_distance,
               "tar_at_far_1e-3": r.tar_at_far_1e3, "auc": r.roc.auc if r.roc else None}
        if r.attack1 is not None:
            row["attack1"] = {"rank1": r.attack1.rates[1], "rank5": r.attack1.rates[5],
                              "chance_rank1": r.attack1.chance[1],
                              "chance_rank5": r.attack1.chance[5],
                              "gallery": r.attack1.gallery_size,
                              "probes": r.attack1.n_probes,
                              "rank1_other_photo": r.attack1_other_photo}
        if r.attack2 is not None:
            row["attack2"] = {"accuracy": r.attack2.accuracy, "chance": r.attack2.chance,
                              "by_classifier": r.attack2.by_classifier,
                              "identities": r.attack2.n_identities}
        rows.append(row)
    data = {"datasets": [{"name": d.name, "kind": d.kind, "sources": len(d.sources),
                          "no_face": run.no_face.get(d.name, 0)} for d in run.datasets],
            "methods": [m.key for m in run.methods], "results": rows,
            "checks": [{"dataset": d, "measure": n, "value": v, "passed": ok}
                       for d, n, v, ok in checks(results)],
            "problems": run.problems}
    return _jsonable(data)


def write_report(run: EvaluationRun, results: list[MethodResult], out_dir: Path,
                 command: str = "") -> Path:
    """OUT_DIR/index.html with its figures, per_face.csv and summary.json."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figure_files: dict[str, dict[str, str]] = {}
    for name, group in by_dataset(results).items():
        figure_files[name] = {}
        for key, (make, _caption) in FIGURES.items():
            file = f"{key}-{slug(name)}.png"
            make(group).savefig(out_dir / file)
            figure_files[name][key] = file
    write_csv(run, out_dir / "per_face.csv")
    (out_dir / "summary.json").write_text(
        json.dumps(summary_dict(run, results), indent=1, ensure_ascii=False) + "\n")
    index = out_dir / "index.html"
    index.write_text(render_html(run, results, figure_files, command), encoding="utf-8")
    return index


#: Why each known data set may be measured on: none of it trained a studio model.
DATA_NOTES = {
    "genki4k-test": "the test split, held out from the generator, the calibration and the "
                    "morphable model; smile and pose labels",
    "celeba-id": "used to train none of the studio's models; identity labels",
    "utkface-holdout": "every 23rd image, held out from the generator and the morphable "
                       "model; gender labels",
    "folder": "a folder of photos",
}


def _intro(run: EvaluationRun) -> list[str]:
    lines = []
    for d in run.datasets:
        lines.append(f"{d.name} ({DATA_NOTES[d.kind]}): {len(d.sources)} photos, "
                     f"{run.no_face.get(d.name, 0)} without a face in the original")
    return lines


def render_html(run: EvaluationRun, results: list[MethodResult],
                figure_files: dict[str, dict[str, str]], command: str = "") -> str:
    e = html.escape
    parts = ["<h1>Privacy and utility of surrogates against naive de-identification</h1>"]
    if command:
        parts.append(f"<p class='note'>Made by <code>{e(command)}</code>.</p>")
    parts.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in _intro(run)) + "</ul>")
    found = checks(results)
    if found:
        parts.append("<h2>The GAN surrogate against the bars</h2>" + table(
            ["data set", "measure", "value", ""],
            [[e(d), e(n), e(v), f"<span class='{'pass' if ok else 'fail'}'>"
              f"{'pass' if ok else 'FAIL'}</span>"] for d, n, v, ok in found]))
    for name, group in by_dataset(results).items():
        parts.append(f"<h2>{e(name)}</h2>")
        for t in tables(group):
            parts.append(f"<h3>{e(t.title)}</h3>" + table(
                [e(h) for h in t.head], [[e(c) for c in row] for row in t.rows]))
            if t.note:
                parts.append(f"<p class='note'>{e(t.note)}</p>")
        for key, (_make, caption) in FIGURES.items():
            parts.append(f"<figure><img src='{e(figure_files[name][key])}' alt='{key}'>"
                         f"<figcaption>{e(caption)}</figcaption></figure>")
    if run.problems:
        parts.append(f"<h2>Problems ({len(run.problems)})</h2><ul>"
                     + "".join(f"<li>{e(p)}</li>" for p in run.problems) + "</ul>")
    return page("Surrogate evaluation", parts)


def render_markdown(run: EvaluationRun, results: list[MethodResult], figure_dir: str,
                    command: str = "") -> str:
    """The same report as Markdown, for ``docs/evaluation.md``; figures under figure_dir."""
    def md_table(head: list[str], rows: list[list[str]]) -> str:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in rows]
        return "\n".join(lines)

    out = ["# Privacy and utility: surrogates against blur, pixelation and masks", ""]
    if command:
        out += [f"Re-made by `{command}`.", ""]
    out += [f"- {x}" for x in _intro(run)] + [""]
    found = checks(results)
    if found:
        out += ["## The GAN surrogate against the bars", "",
                md_table(["data set", "measure", "value", ""],
                         [[d, n, v, "pass" if ok else "**FAIL**"] for d, n, v, ok in found]),
                ""]
    for name, group in by_dataset(results).items():
        out += [f"## {name}", ""]
        for t in tables(group):
            out += [f"### {t.title}", "", md_table(t.head, t.rows), ""]
            if t.note:
                out += [f"*{t.note}*", ""]
        for key, (_make, caption) in FIGURES.items():
            out += [f"![{key}]({figure_dir}/{key}-{slug(name)}.png)", "", f"*{caption}*", ""]
    return "\n".join(out)
