"""The evaluation's figures: privacy against utility, each recognizer's distance or
similarity histogram and ROC curves. Colours by method family, shared with the window."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from studio.core.evaluation.methods import METHODS, family_colour
from studio.core.evaluation.privacy import RECOGNIZERS
from studio.core.evaluation.summary import BARS, TRADEOFF_AXES, MethodResult
from studio.core.evaluation.tables import pct
from studio.core.report_html import figure


def _style(method: str) -> dict:
    """Colour by family; the light strength of a naive method dashed, the strong solid."""
    m = METHODS[method]
    return {"color": family_colour(m.family), "linestyle": "--" if m.light else "-"}


def distance_figure(results: list[MethodResult]) -> Figure:
    """Each recognizer's figure from original to output, one panel each, with the line
    past which it calls the output another person."""
    fig = figure(11.0, 4.2)
    for i, rec in enumerate(RECOGNIZERS):
        ax = fig.add_subplot(1, len(RECOGNIZERS), i + 1)
        dlib = rec.score == "distance"
        bins = np.linspace(0, 1.2, 49) if dlib else np.linspace(-0.4, 1.0, 57)
        for r in results:
            d = r.privacy[rec.key].scores
            d = d[np.isfinite(d)]
            if r.method != "original" and d.size:
                ax.hist(np.clip(d, bins[0], bins[-1]), bins=bins, histtype="step",
                        density=True, lw=1.4, label=r.label, **_style(r.method))
        t = rec.threshold()
        ax.axvline(t, color="#c62828", lw=1)
        ax.text(t, ax.get_ylim()[1] * 0.97, " same ← | → another" if dlib else
                "another ← | → same ", color="#c62828", fontsize=8, va="top",
                ha="left" if dlib else "right")
        ax.set_xlabel(f"{rec.name}: {'distance' if dlib else 'cosine similarity'}, "
                      "original to output", fontsize=8)
        ax.set_ylabel("density")
        ax.set_title(f"another person: {rec.rule()}", fontsize=9)
        if i == 0:
            ax.legend(fontsize=7, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


def roc_figure(results: list[MethodResult]) -> Figure:
    """An attacker who compares outputs with originals, by each recognizer."""
    fig = figure(11.0, 4.6)
    chance = np.logspace(-5, 0, 60)
    for i, rec in enumerate(RECOGNIZERS):
        ax = fig.add_subplot(1, len(RECOGNIZERS), i + 1)
        for r in results:
            p = r.privacy[rec.key]
            if p.roc is None:
                continue
            ax.step(np.maximum(p.roc.far, 1e-5), p.roc.tar, where="post", lw=1.4,
                    label=f"{r.label} (TAR {pct(p.tar_at_far_1e3)})", **_style(r.method))
        ax.axvline(1e-3, color="#888", lw=0.8, ls=":")
        ax.plot(chance, chance, color="#bbb", lw=0.8)  # an attacker who guesses
        ax.set_xscale("log")
        ax.set_xlim(1e-5, 1)
        ax.set_ylim(0, 1.02)
        ax.set_title(rec.name, fontsize=9)
        ax.set_xlabel("false accept rate (impostor pairs)")
        ax.set_ylabel("true accept rate (original vs its output)")
        ax.legend(fontsize=6, frameon=False, loc="upper left")
    fig.tight_layout()
    return fig


#: Height of one label line on the trade-off plot, in its y units (7-point text on an
#: axis that spans 1.08 over about 3.6 inches)
LABEL_LINE = 0.045
#: Points right of this de-identified share take their labels on their left
LABEL_LEFT_OF = 0.6


def label_on_left(x: float) -> bool:
    """Whether the label of a point at ``x`` goes on the point's left (near the right edge)."""
    return x > LABEL_LEFT_OF


def label_places(points: list[tuple[float, float]], line: float = LABEL_LINE
                 ) -> list[tuple[float, float]]:
    """Where each point's label goes on the trade-off plot: (x, y) of the label's baseline.
    A label sits just above its point, on the point's left when the point is right of 0.6;
    one that would overlap a label already placed on the same side (points taken from the
    top) moves down below it, so crowded corners stay readable."""
    order = sorted(range(len(points)), key=lambda i: -points[i][1])
    placed: dict[int, tuple[float, float]] = {}
    for i in order:
        x, y = points[i]
        side = label_on_left(x)
        label_y = y + 0.01
        while True:
            clash = [ly for j, (lx, ly) in placed.items()
                     if label_on_left(points[j][0]) == side and abs(lx - x) < 0.35
                     and abs(ly - label_y) < line]
            if not clash:
                break
            label_y = min(clash) - line
        placed[i] = (x, label_y)
    return [placed[i] for i in range(len(points))]


def tradeoff_figure(results: list[MethodResult]) -> Figure:
    """One point per method and strength: privacy across, utility up."""
    fig = figure(6.5, 4.6)
    ax = fig.add_subplot()
    points = [r.tradeoff for r in results]
    for r, (x, y), (_, label_y) in zip(results, points, label_places(points), strict=True):
        style = _style(r.method)
        hollow = METHODS[r.method].light
        ax.scatter([x], [y], s=70, zorder=3,
                   facecolors="white" if hollow else style["color"], edgecolors=style["color"],
                   linewidths=1.6)
        left = label_on_left(x)
        moved = label_y < y - 0.01  # pushed down by a neighbour: a thin line to its point
        ax.annotate(r.label, (x, y), xytext=(x + (-0.025 if left else 0.025), label_y),
                    textcoords="data", fontsize=7, color=style["color"],
                    ha="right" if left else "left", va="bottom",
                    arrowprops={"arrowstyle": "-", "color": style["color"], "lw": 0.5,
                                "shrinkA": 0, "shrinkB": 4} if moved else None)
    ax.axvline(BARS["deidentified"], color="#bbb", lw=0.8, ls=":")
    ax.axhline(BARS["smile_agreement"], color="#bbb", lw=0.8, ls=":")
    ax.set_xlim(-0.03, 1.1)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel(TRADEOFF_AXES[0])
    ax.set_ylabel(TRADEOFF_AXES[1])
    ax.set_title("privacy → , utility ↑ : the top right is where surrogates should sit",
                 fontsize=9)
    fig.tight_layout()
    return fig


FIGURES = {"tradeoff": (tradeoff_figure, "Privacy against utility, one point per method "
                        "and strength (hollow: the lighter strength); privacy is the share "
                        "both recognizers call another person (dlib: distance ≥ 0.6; "
                        "MobileFaceNet ArcFace: cosine under its calibrated threshold)."),
           "distances": (distance_figure, "Each recognizer's figure from each original "
                         "to its output: dlib's distance (right of the red line: another "
                         "person) and the second recognizer's cosine similarity (left of "
                         "it: another person)."),
           "roc": (roc_figure, "Verification ROC of an attacker who compares outputs with "
                   "originals, by each recognizer; lower is more private.")}


def by_dataset(results: list[MethodResult]) -> dict[str, list[MethodResult]]:
    out: dict[str, list[MethodResult]] = {}
    for r in results:
        out.setdefault(r.dataset, []).append(r)
    return out
