"""The evaluation's tables (utility, ground truth, privacy, realism, joy bins) and the
GAN surrogate's checks against its bars: plain rows that the report and the window draw."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from studio.core.evaluation.privacy import ARCFACE, DLIB, RECOGNIZERS, steering
from studio.core.evaluation.summary import BARS, MethodResult
from studio.core.report_html import fmt
from studio.core.surrogates.registry import GAN


def pct(x: float | None) -> str:
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
        ["method", "faces", "face found", "smile agreement", "7-class agreement",
         "happy agreement", "joy r", "yaw err", "pitch err", "roll err", "gender agreement"],
        [[r.label, str(r.n), pct(r.detection), pct(r.smile_agreement),
          pct(r.expression7_agreement), pct(r.happy_agreement),
          fmt(r.joy_correlation, 2), fmt(r.angle_error["yaw"], 1),
          fmt(r.angle_error["pitch"], 1), fmt(r.angle_error["roll"], 1),
          pct(r.gender_agreement)] for r in results],
        "Smile agreement counts an output without a face as a lost smile; the other "
        "columns of the studio's own analysis use outputs with a face. Angle errors are "
        "mean absolute differences in degrees. 7-class and happy agreement come from an "
        "independent judge (FER-2013 mini-Xception, models/expression7.md), not the "
        "analyzer that labelled the generator's training data: the share of outputs put "
        "in the original's class, or on the same side of happy-or-not.")]
    out.append(joy_table(results))
    realistic = [r for r in results if r.realism is not None]
    if realistic:
        out.append(realism_table(realistic))
    keys = [k for k in ("smile_accuracy", "yaw_error", "pitch_error", "roll_error",
                        "gender_accuracy") if any(k in r.truth for r in results)]
    if keys:
        names = {"smile_accuracy": "smile accuracy", "yaw_error": "yaw err",
                 "pitch_error": "pitch err", "roll_error": "roll err",
                 "gender_accuracy": "gender accuracy"}
        out.append(Table(
            "Utility: the output against ground truth",
            ["method", *(names[k] for k in keys)],
            [[r.label, *(pct(r.truth.get(k)) if k.endswith("accuracy")
                         else fmt(r.truth.get(k), 1) for k in keys)] for r in results],
            "The data set's own labels; the original row is the face analysis itself."))
    out.append(privacy_table(results))
    return out


def _identified(result, rank: int) -> str:
    """An identification attack's rate at ``rank`` with its multiple of chance."""
    return "–" if result is None else f"{pct(result.rates[rank])} ({result.over_chance[rank]:.1f}×)"


def privacy_table(results: list[MethodResult]) -> Table:
    """Each method's privacy by each recognizer, one row per recognizer, side by side."""
    rows = []
    for r in results:
        for i, rec in enumerate(RECOGNIZERS):
            p = r.privacy[rec.key]
            a2 = p.attack2
            rows.append([
                r.label if i == 0 else "", rec.name, pct(p.deidentified),
                pct(r.deidentified_both) if i == 0 else "",
                fmt(p.median, 3), pct(p.tar_at_far_1e3), fmt(p.roc.auc if p.roc else None, 3),
                _identified(p.attack1, 1), _identified(p.attack1, 5),
                pct(p.attack1_other_photo), _identified(p.parrot, 1),
                _identified(p.parrot, 5), pct(p.parrot_other_photo),
                "–" if a2 is None else
                f"{pct(a2.accuracy)} ({a2.accuracy / a2.chance:.1f}×, {a2.winner}; "
                f"chance {pct(a2.chance)})"])
    chance = next((r.attack1 for r in results if r.attack1 is not None), None)
    note = (f"{steering()} De-identified: share of outputs (with a descriptor) each "
            f"recognizer calls another person ({DLIB.name}: {DLIB.rule()}; {ARCFACE.name}: "
            f"{ARCFACE.rule()}); 'by both': the studio's own rule, both at once. Median: "
            "dlib's distance, the second recognizer's cosine similarity, original to "
            "output. TAR at FAR 1e-3: genuine pairs are original and output of the same "
            "face, impostors pairs of different people.")
    if chance is not None:
        note += (f" Attack I: every output identified in a gallery of "
                 f"{chance.gallery_size} originals, one per person (chance rank-1 "
                 f"{pct(chance.chance[1])}, rank-5 {pct(chance.chance[5])}, the same for "
                 "both recognizers); 'other photo' is rank-1 for outputs of a photo that is "
                 "not the gallery's. Parrot: the attacker knows the method and passes the "
                 "gallery's originals through it (fresh seeds for the surrogates), then "
                 "matches each output against those; same gallery and chance as attack I. "
                 "Attack II: a classifier trained on outputs of known people identifies "
                 "their other outputs; the attacker keeps the best of nearest-centroid, "
                 "logistic regression and an RBF SVM (named).")
    return Table("Privacy, by each recognizer",
                 ["method", "recognizer", "de-identified", "by both", "median",
                  "TAR @ FAR 1e-3", "AUC", "attack I rank-1", "rank-5",
                  "rank-1, other photo", "parrot rank-1", "parrot rank-5",
                  "parrot rank-1, other photo", "attack II"], rows, note)


def joy_table(results: list[MethodResult]) -> Table:
    """Smile agreement per bin of the original's joy, over the whole range."""
    bins = results[0].joy_bins
    head = ["method", *(f"joy {b.low:.1f}–{b.high:.1f}" for b in bins)]
    rows = [[r.label, *(f"{pct(b.smile_agreement)} (Δjoy {fmt(b.joy_error, 2)}; "
                        f"7-class {pct(b.expression7_agreement)})"
                        for b in r.joy_bins)] for r in results]
    counts = ", ".join(f"{b.low:.1f}–{b.high:.1f}: {b.n}" for b in bins)
    return Table("Utility by the original's joy: smile agreement (mean absolute Δjoy; "
                 "7-class agreement)", head, rows,
                 f"Faces per bin: {counts}. The middle bins hold the ambiguous smiles, where "
                 "a surrogate is most likely to flip the decision; the whole-range figures "
                 "above average over all of them.")


def realism_table(results: list[MethodResult]) -> Table:
    """Each surrogate's realism beside the same measure between two halves of the reals."""
    def pair(value: float, ref: float, digits: int) -> str:
        return f"{fmt(value, digits)} (real {fmt(ref, digits)})"

    rows = []
    for r in results:
        x, ref = r.realism, r.realism.reference
        rows.append([r.label, f"{pct(x.face_found)} (real {pct(x.face_found_reals)})",
                     pair(x.c2st, ref.c2st, 2), pair(x.c2st_pooled, ref.c2st_pooled, 2),
                     f"{fmt(x.fd, 3)} ({fmt(x.ratio('fd'), 1)}×)",
                     f"{fmt(x.fd_pooled, 3)} ({fmt(x.ratio('fd_pooled'), 1)}×)",
                     pair(x.kid, ref.kid, 4), fmt(x.sharpness_ratio, 2)])
    return Table(
        "Realism: the surrogates against this set's real faces",
        ["method", "face found (dlib HOG)", "real-vs-output accuracy",
         "same, mid-layer", "Fréchet distance", "same, mid-layer", "KID", "sharpness"], rows,
        "Every face at 64 px in one framing. Face found: dlib's HOG detector, a second "
        "detector beside the studio's own. Real-vs-output accuracy: a cross-validated "
        "classifier on the identity network's 128-d descriptor (or one of its middle "
        "layers) tells outputs from real faces; 0.5 means it cannot. Fréchet distance "
        "with its ratio to real-versus-real, KID (near 0 for real-versus-real) and "
        "sharpness (high-frequency energy, outputs over reals). Every figure in "
        "brackets is the same measure between two disjoint halves of the real faces.")


def _span(values: list[float], show) -> str:
    """The range of a figure over the data sets, e.g. '88–90%'."""
    v = [x for x in values if x is not None and math.isfinite(x)]
    if not v:
        return "–"
    lo, hi = show(min(v)), show(max(v))
    return lo if lo == hi else f"{lo}–{hi}"


def _times(x: float) -> str:
    return f"{x:.1f}×"


def overview_table(results: list[MethodResult]) -> Table:
    """One row per method over every data set: what a researcher weighs to choose one."""
    methods = list(dict.fromkeys(r.method for r in results if r.method != "original"))
    floor = [r for r in results if r.method == "original"]
    rows = []
    for key in methods:
        mine = [r for r in results if r.method == key]
        privacy = [[r.privacy[rec.key] for r in mine] for rec in RECOGNIZERS]
        rows.append([
            mine[0].label,
            _span([r.smile_agreement for r in mine], pct),
            _span([r.expression7_agreement for r in mine], pct),
            " / ".join([*(_span([p.deidentified for p in ps], pct) for ps in privacy),
                        _span([r.deidentified_both for r in mine], pct)]),
            " / ".join(_span([p.attack1.over_chance[1] for p in ps if p.attack1], _times)
                       for ps in privacy),
            *(_span([p.parrot.over_chance[1] for p in ps if p.parrot], _times) + " / " +
              _span([p.parrot_other_photo / p.parrot.chance[1] for p in ps
                     if p.parrot and p.parrot_other_photo is not None], _times)
              for ps in privacy),
            _span(_labels_over_chance(mine), _times),
            _span([r.realism.c2st for r in mine if r.realism], lambda x: f"{x:.2f}")])
    return Table(
        "At a glance: each method over every data set",
        ["method", "smile agreement", "7-class agreement",
         f"de-identified: {' / '.join(rec.short for rec in RECOGNIZERS)} / both",
         f"attack I rank-1 (× chance): {' / '.join(rec.short for rec in RECOGNIZERS)}",
         *(f"parrot rank-1 (× chance), {rec.short}: all / other photo" for rec in RECOGNIZERS),
         "parrot by the labels alone, other photo (× chance)",
         "real-vs-output accuracy"],
        rows,
        f"{steering()} {ARCFACE.short}: {ARCFACE.name}; 'both': another person to both at "
        "once, the studio's own rule. "
        "Ranges over the data sets below. A method fit for crowd labels keeps the smile and "
        "the 7-class expression near the original's (both 100% for the original itself), "
        "de-identifies nearly every face, keeps both attacks near 1× chance, and looks "
        "real: a real-vs-output accuracy near 0.5. No single figure decides; a method that "
        "fails one of these fails the study. The parrot's 'other photo' figure counts only "
        "outputs of photos that are not the gallery's own: a deterministic method (blur, "
        "pixelation, masks) gives the attacker who holds the very photo an exact match, "
        "which the 'all' figure includes. The labels alone: the parrot attacker reads only "
        "the five attributes a surrogate keeps (joy, P(male), yaw, pitch, roll) off the "
        "outputs; on the originals that is the floor no label-keeping method goes below"
        f"{_floor_text(floor)}.")


def _labels_over_chance(results: list[MethodResult]) -> list[float]:
    """The parrot by the kept labels alone, other photo, as multiples of chance."""
    return [r.label_parrot_other_photo / r.label_parrot.chance[1] for r in results
            if r.label_parrot is not None and r.label_parrot_other_photo is not None]


def _floor_text(originals: list[MethodResult]) -> str:
    """The originals' label-only parrot, the floor, in words (empty where not measured)."""
    found = _labels_over_chance(originals)
    return f" ({_span(found, _times)} here)" if found else ""


def checks(results: list[MethodResult]) -> list[tuple[str, str, str, bool]]:
    """The issue's bars on the GAN surrogate: (data set, measure, value and bar, passed)."""
    names = {"deidentified": ("de-identified share", f">= {BARS['deidentified']:.0%}"),
             "smile_agreement": ("smile agreement", f">= {BARS['smile_agreement']:.0%}"),
             "rank1_over_chance": ("attack I rank-1 over chance",
                                   f"<= {BARS['rank1_over_chance']:.0f}×")}
    out = []
    for r in results:
        if r.method != GAN:
            continue
        for key, (value, ok) in r.checks().items():
            name, bar = names[key]
            shown = f"{value:.2f}×" if key == "rank1_over_chance" else pct(value)
            out.append((r.dataset, name, f"{shown} (bar {bar})", ok))
    return out
