"""The evaluation as a report: HTML and Markdown tables, plots, a per-face CSV, JSON."""

from __future__ import annotations

import csv
import html
import json
import math
import re
from pathlib import Path

import numpy as np

from studio.core.analysis.attributes import NAMES
from studio.core.evaluation.figures import FIGURES, by_dataset
from studio.core.evaluation.privacy import RECOGNIZERS, Privacy, read_back, steering
from studio.core.evaluation.study import EvaluationRun
from studio.core.evaluation.summary import MethodResult
from studio.core.evaluation.tables import checks, overview_table, tables
from studio.core.metrics.comparison import another_person
from studio.core.report_html import page, table


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


# -- files --------------------------------------------------------------------------------


def write_csv(run: EvaluationRun, path: Path) -> None:
    """One row per source face and method: every measurement behind the tables, with each
    recognizer's figure and verdict, and whether the studio read the method's outputs back
    with both (``read_back_by``: it steered on them, so their verdicts are not
    independent)."""
    fields = ("found", *NAMES)
    truth_keys = sorted({k for m in run.measurements for k in m.truth})
    steered = {m.key: " and ".join(r.key for r in RECOGNIZERS) if read_back(m.key) else ""
               for m in run.methods}
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["dataset", "source", "identity", "method", *(f"truth_{k}" for k in truth_keys),
                    *(f"original_{f}" for f in fields[1:]), *(f"output_{f}" for f in fields),
                    "distance", "smile_kept", "arcface_similarity",
                    *(f"another_person_{r.key}" for r in RECOGNIZERS), "another_person_both",
                    "read_back_by"])
        for m in run.measurements:
            o, s = m.original, m.output
            d, sim = (float(r.scores(r.descriptors([o]), r.descriptors([s]))[0])
                      for r in RECOGNIZERS)
            verdicts = [r.another(x) for r, x in zip(RECOGNIZERS, (d, sim), strict=True)]
            both = another_person(d, sim) if None not in verdicts else None
            w.writerow([m.dataset, m.source, m.identity, m.method,
                        *(m.truth.get(k, "") for k in truth_keys),
                        *(_cell(getattr(o, f)) for f in fields[1:]),
                        *(_cell(getattr(s, f)) for f in fields), _cell(d),
                        _cell(s.smiling == o.smiling), _cell(sim), *map(_cell, verdicts),
                        _cell(both), steered.get(m.method, "")])


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


def _identification(result, other_photo: float | None) -> dict:
    """An identification attack's figures (attack I and the parrot share the shape)."""
    return {"rank1": result.rates[1], "rank5": result.rates[5],
            "chance_rank1": result.chance[1], "chance_rank5": result.chance[5],
            "gallery": result.gallery_size, "probes": result.n_probes,
            "rank1_other_photo": other_photo}


def _attacks(p: Privacy) -> dict:
    """One recognizer's attack I, parrot and attack II figures, where they were measured."""
    out: dict = {}
    if p.attack1 is not None:
        out["attack1"] = _identification(p.attack1, p.attack1_other_photo)
    if p.parrot is not None:
        out["attack_parrot"] = _identification(p.parrot, p.parrot_other_photo)
    if p.attack2 is not None:
        out["attack2"] = {"accuracy": p.attack2.accuracy, "chance": p.attack2.chance,
                          "winner": p.attack2.winner, "by_classifier": p.attack2.by_classifier,
                          "identities": p.attack2.n_identities}
    return out


def summary_dict(run: EvaluationRun, results: list[MethodResult]) -> dict:
    rows = []
    for r in results:
        row = {"dataset": r.dataset, "method": r.method, "label": r.label, "faces": r.n,
               "detection": r.detection, "smile_agreement": r.smile_agreement,
               "joy_correlation": r.joy_correlation, "angle_error": r.angle_error,
               "gender_agreement": r.gender_agreement, "truth": r.truth,
               "deidentified": r.deidentified, "median_distance": r.median_distance,
               "tar_at_far_1e-3": r.tar_at_far_1e3, "auc": r.roc.auc if r.roc else None,
               "expression7_agreement": r.expression7_agreement,
               "realism": r.realism.to_dict() if r.realism is not None else None,
               "happy_agreement": r.happy_agreement,
               "joy_bins": [{"low": b.low, "high": b.high, "faces": b.n,
                             "smile_agreement": b.smile_agreement, "joy_error": b.joy_error,
                             "expression7_agreement": b.expression7_agreement}
                            for b in r.joy_bins]}
        # dlib's figures keep their first keys; "recognizers" holds both, side by side
        row.update(_attacks(r.dlib))
        row["attack_parrot_rank1"] = r.parrot.rates[1] if r.parrot else None
        row["attack_parrot_chance"] = r.parrot.chance[1] if r.parrot else None
        if r.label_parrot is not None:  # the kept labels alone (evaluation.label_parrot)
            row["attack_parrot_labels"] = _identification(r.label_parrot,
                                                          r.label_parrot_other_photo)
        row["deidentified_both"] = r.deidentified_both
        row["read_back"] = read_back(r.method)
        row["recognizers"] = {
            rec.key: {"deidentified": r.privacy[rec.key].deidentified,
                      f"median_{rec.score}": r.privacy[rec.key].median,
                      "tar_at_far_1e-3": r.privacy[rec.key].tar_at_far_1e3,
                      "auc": r.privacy[rec.key].roc.auc if r.privacy[rec.key].roc else None,
                      **_attacks(r.privacy[rec.key])} for rec in RECOGNIZERS}
        rows.append(row)
    data = {"steering": steering(),
            "recognizers": [{"key": rec.key, "name": rec.name, "model": rec.model,
                             "another_person": rec.rule(), "threshold": rec.threshold(),
                             "steered_on": True} for rec in RECOGNIZERS],
            "datasets": [{"name": d.name, "kind": d.kind, "sources": len(d.sources),
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
#: What each kind of data set offers; which models saw its photos comes from their
#: training manifests (``Dataset.provenance``), never from a sentence written here.
DATA_NOTES = {
    "genki4k-test": "GENKI-4K's test split; smile and pose labels",
    "celeba-id": "the evaluation half of celeba-id's identities; identity labels",
    "utkface-holdout": "every 23rd image; gender labels",
    "folder": "a folder of photos",
}


#: How to read the report, for a researcher choosing a method (the figures say the rest).
READING = (
    "Each method de-identifies every face of each data set, and its output is measured "
    "three ways. Utility: does the output keep what crowd workers will label? It is checked by "
    "the studio's own analysis (smile, joy, pose, gender), by an independent 7-class "
    "expression judge that never labelled the generator's data, and per bin of the "
    "original's joy, where ambiguous smiles sit. Privacy: can the person be found again? "
    "This is tested by identity distance, by matching against the originals (attack I), "
    "by an attacker who knows the method and anonymises the gallery with it (the parrot "
    "attack), and by classifiers trained on outputs of known people (attack II). "
    "Realism: does it look like a photograph of a face? Every realism figure stands beside "
    "the same measure between two halves of the real faces. The GAN and in-context "
    "surrogates are measured as the studio hands them out: each is read back by the "
    "studio's analysis and drawn again until both of its recognizers (dlib and the "
    "second, MobileFaceNet ArcFace) call it another person with the original's smile and "
    "gender decisions, so their smile and gender agreement and their de-identified share "
    "by either recognizer are helped by that choice; the 7-class judge, the realism "
    "measures and the attacks choose nothing. Every privacy figure is given by both "
    "recognizers, side by side. Which models saw which photos "
    "is read from their training manifests and said for each data set below: a figure "
    "measured on faces a model trained on flatters that model.")


def _intro(run: EvaluationRun) -> list[str]:
    lines = []
    for d in run.datasets:
        lines.append(f"{d.name} ({DATA_NOTES[d.kind]}): {len(d.sources)} photos, "
                     f"{run.no_face.get(d.name, 0)} without a face in the original. "
                     f"Training manifests: {d.provenance()}")
    return lines


def render_html(run: EvaluationRun, results: list[MethodResult],
                figure_files: dict[str, dict[str, str]], command: str = "") -> str:
    e = html.escape
    parts = ["<h1>Privacy and utility of surrogates against naive de-identification</h1>"]
    if command:
        parts.append(f"<p class='note'>Made by <code>{e(command)}</code>.</p>")
    parts.append(f"<p>{e(READING)}</p>")
    parts.append(f"<p class='note'><strong>Which recognizers the studio steers on.</strong> "
                 f"{e(steering())}</p>")
    parts.append("<ul>" + "".join(f"<li>{e(x)}</li>" for x in _intro(run)) + "</ul>")
    glance = overview_table(results)
    parts.append(f"<h2>{e(glance.title)}</h2>" + table(
        [e(h) for h in glance.head], [[e(c) for c in row] for row in glance.rows])
        + f"<p class='note'>{e(glance.note)}</p>")
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
    out += [READING, "", f"**Which recognizers the studio steers on.** {steering()}", ""]
    out += [f"- {x}" for x in _intro(run)] + [""]
    glance = overview_table(results)
    out += [f"## {glance.title}", "", md_table(glance.head, glance.rows), "",
            f"*{glance.note}*", ""]
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
