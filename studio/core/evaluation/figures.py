"""The evaluation's figures: privacy against utility, distance histograms, ROC curves.
Colours by method family, shared with the window."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.evaluation.methods import METHODS
from studio.core.evaluation.summary import BARS, MethodResult
from studio.core.evaluation.tables import pct
from studio.core.report_html import figure

FAMILY_COLORS = {"original": "#555555", "gan": "#dd8452", "3d": "#55a868", "blur": "#4c72b0",
                 "pixelate": "#8172b3", "mask": "#222222", "context": "#c44e52",
                 "context-blur": "#937860"}


def _style(method: str) -> dict:
    """Colour by family; the light strength of a naive method dashed, the strong solid."""
    m = METHODS[method]
    return {"color": FAMILY_COLORS[m.family], "linestyle": "--" if m.light else "-"}


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
                label=f"{r.label} (TAR {pct(r.tar_at_far_1e3)})", **_style(r.method))
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
