"""Expression preservation and identity similarity, updated for every new surrogate.

Both panels bind to a ``ComparisonState``: the studio window's live one, or the curation
window's stored candidate. Their columns and series are the registry's candidate methods
(``surrogates.registry``), read when a panel is built: a method registered before then
has its column, heading and colour with no change here."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGroupBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from studio.core.analysis.attributes import SPEC, AttributeSpec
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.analysis.landmarks import BLENDSHAPE_NAMES
from studio.core.surrogates.privacy import DEFAULT_PRIVACY
from studio.core.surrogates.registry import REGISTRY, MethodSpec
from studio.ui.comparison_state import HISTORY, ComparisonState

ROWS = [SPEC[name] for name in ("joy", "yaw", "pitch", "roll")]
ORIGINAL_COLOR = (90, 150, 230)
SYMBOLS = ("o", "t", "s", "d", "star", "+", "x", "p", "h")  # one per method's history curve
BAR_SPAN = 0.84  # of one blendshape's slot, shared by the original's and each method's bars


def measured_methods() -> list[MethodSpec]:
    """The methods the panels show: the surrogates a batch makes, in registry order, each
    once: the in-context column shows the preset of the window's Privacy menu, so the
    methods registered for the other presets (``context-strict``) have no column."""
    return [REGISTRY[key] for key in REGISTRY.candidates()
            if REGISTRY[key].privacy == DEFAULT_PRIVACY]


def heading(spec: MethodSpec) -> str:
    """The method's column heading, capitalised where it starts a verdict."""
    column = spec.column
    return column[:1].upper() + column[1:]


def number(spec: AttributeSpec, value: float) -> str:
    """A table cell: the unit is in the row's label."""
    return f"{value:+.1f}" if spec.is_angle else f"{value:.2f}"


def short_name(blendshape: str) -> str:
    """mouthSmileLeft -> "mouthSmile L", so that five fit under one chart."""
    for side, tag in (("Left", " L"), ("Right", " R")):
        if blendshape.endswith(side):
            return blendshape[: -len(side)] + tag
    return blendshape


class ExpressionPanel(QGroupBox):
    """Original against each method's surrogate: joy and angles with differences, smile
    decisions, and the top blendshapes of all of them as a bar chart."""

    def __init__(self, state: ComparisonState) -> None:
        super().__init__("Expression preservation")
        self.state = state
        self.methods = measured_methods()
        layout = QVBoxLayout(self)
        self.table = QTableWidget(len(ROWS) + 1, 1 + 2 * len(self.methods))
        # Each method's values, then their difference from the original's under "Δ" (the
        # method's name would not fit there once there are more than three).
        self.table.setHorizontalHeaderLabels(
            ["original", *(t for m in self.methods for t in (m.column, "Δ"))])
        for k, method in enumerate(self.methods):
            self.table.horizontalHeaderItem(2 + 2 * k).setToolTip(
                f"{method.label} minus the original")
        self.table.setVerticalHeaderLabels([f"{s.label} {s.unit}".strip() for s in ROWS]
                                           + ["Smile"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setFixedHeight(190)
        layout.addWidget(self.table)
        self.verdict = QLabel("")
        layout.addWidget(self.verdict)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(190)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1.35)  # room for the legend above the bars
        legend = self.plot.addLegend(offset=(-5, 2), colCount=4)
        legend.setLabelTextColor("#333")
        self._bar_width = BAR_SPAN / (1 + len(self.methods))
        self.bars = [pg.BarGraphItem(x=[], height=[], width=0.95 * self._bar_width,
                                     brush=color, name=name)
                     for name, color in (("original", ORIGINAL_COLOR),
                                         *((m.column, m.colour) for m in self.methods))]
        for bars in self.bars:
            self.plot.addItem(bars)
        layout.addWidget(self.plot)
        self.updates = 0
        state.comparison_changed.connect(self.refresh)
        state.face_changed.connect(self.refresh)

    def _set(self, row: int, col: int, text: str) -> None:
        item = self.table.item(row, col)
        if item is None:
            item = QTableWidgetItem()
            item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
            self.table.setItem(row, col, item)
        if item.text() != text:
            item.setText(text)

    def refresh(self, _method: str | None = None) -> None:
        face = self.state.face
        comps = [self.state.comparison(m.key) for m in self.methods]
        surs = [c.surrogate if c else None for c in comps]
        cols = [1 + 2 * k for k in range(len(self.methods))]
        for r, spec in enumerate(ROWS):
            o = getattr(face.attributes, spec.name) if face else None
            self._set(r, 0, number(spec, o) if o is not None else "–")
            for col, sur in zip(cols, surs, strict=True):
                s = getattr(sur.attributes, spec.name) if sur else None
                self._set(r, col, number(spec, s) if s is not None else "–")
                self._set(r, col + 1, number(spec, s - o) if o is not None and s is not None
                          else "–")
        smile = len(ROWS)
        self._set(smile, 0, ("yes" if face.attributes.smiling else "no") if face else "–")
        verdicts = []
        for col, comp, sur, method in zip(cols, comps, surs, self.methods, strict=True):
            self._set(smile, col, ("yes" if sur.attributes.smiling else "no") if sur else "–")
            kept = comp.smile_kept if comp else None
            self._set(smile, col + 1, "kept" if kept else ("changed" if kept is False else "–"))
            if comp is not None and sur is None:
                verdicts.append(f"{method.column}: no face found.")
            elif kept is not None:
                verdicts.append(f"{method.column}: smile decision "
                                + ("kept." if kept else "CHANGED!"))
        self.verdict.setText("   ".join(verdicts))
        self._bars(face, surs)
        self.updates += 1

    def _bars(self, face, surs) -> None:
        if face is None:
            for bars in self.bars:
                bars.setOpts(x=[], height=[])
            return
        scores = face.blendshapes.copy()
        for other in surs:
            if other is not None:
                scores = np.maximum(scores, other.blendshapes)
        top = [i for i in np.argsort(-scores) if BLENDSHAPE_NAMES[i] != "_neutral"][:5]
        x = np.arange(len(top))
        offsets = (np.arange(len(self.bars)) - (len(self.bars) - 1) / 2) * self._bar_width
        for offset, bars, who in zip(offsets, self.bars, (face, *surs), strict=True):
            bars.setOpts(x=x + offset, height=who.blendshapes[top] if who is not None
                         else np.zeros(len(top)))
        ticks = [(i, short_name(BLENDSHAPE_NAMES[j])) for i, j in enumerate(top)]
        self.plot.getAxis("bottom").setTicks([ticks])


VERDICT_STYLE = {
    None: "background:#555; color:white; border-radius:6px",
    True: "background:#c62828; color:white; font-weight:bold; font-size:14px; border-radius:6px",
    False: "background:#2e7d32; color:white; font-weight:bold; font-size:14px; "
           "border-radius:6px",
}


def figures(comp) -> str:
    """Both recognizers' figures, each against its own threshold: dlib's distance (another
    person at ≥ 0.6) and the second recognizer's similarity (the same at ≥ its threshold;
    – where it could not be read)."""
    from studio.core.metrics.comparison import threshold2

    sign = "<" if comp.distance < SAME_PERSON_THRESHOLD else "≥"
    dlib = f"dlib distance {comp.distance:.2f} {sign} {SAME_PERSON_THRESHOLD}"
    s2 = getattr(comp, "similarity2", None)
    if s2 is None:
        return f"{dlib}; ArcFace similarity –"
    t2 = threshold2()
    return f"{dlib}; ArcFace similarity {s2:.2f} {'≥' if s2 >= t2 else '<'} {t2:.2f}"


def show_verdict(label: QLabel, comp, who: str) -> None:
    """"SAME PERSON" in red (either recognizer says so, or the second could not read it)
    or "Different person" in green, with both recognizers' figures."""
    if comp is None or comp.distance is None:
        label.setText(f"{who}: No face in the surrogate" if comp is not None and
                      comp.surrogate is None else f"{who}: –")
        style = VERDICT_STYLE[None]
    elif comp.same_person:
        label.setText(f"{who}: SAME PERSON  ({figures(comp)})")
        style = VERDICT_STYLE[True]
    else:
        label.setText(f"{who}: Different person  ({figures(comp)})")
        style = VERDICT_STYLE[False]
    if label.styleSheet() != style:  # restyling re-polishes the widget: only on a change
        label.setStyleSheet(style)


class IdentityPanel(QGroupBox):
    """Each method's surrogate against both recognizers (dlib's distance and the second's
    similarity, each with its threshold), and the history of dlib's distances."""

    def __init__(self, state: ComparisonState) -> None:
        super().__init__("Identity similarity")
        self.state = state
        self.methods = measured_methods()
        layout = QVBoxLayout(self)
        self.verdicts: dict[str, QLabel] = {}  # by method key
        for method in self.methods:
            label = self.verdicts[method.key] = QLabel("–")
            label.setObjectName(f"identity_verdict_{method.key}")
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setMinimumHeight(36)
            layout.addWidget(label)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(170)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1.2)
        self.plot.setXRange(0, HISTORY - 1)
        self.plot.setLabel("left", "distance")
        self.plot.setLabel("bottom", "recent surrogates")
        self.plot.addLegend(offset=(-5, -5))
        band = pg.LinearRegionItem(values=(0, SAME_PERSON_THRESHOLD), orientation="horizontal",
                                   brush=pg.mkBrush(230, 60, 60, 40), movable=False)
        self.plot.addItem(band)
        self.plot.addItem(pg.InfiniteLine(pos=SAME_PERSON_THRESHOLD, angle=0,
                                          pen=pg.mkPen((200, 40, 40), width=2,
                                                       style=Qt.PenStyle.DashLine)))
        self.curves = {m.key: self.plot.plot([], [], pen=pg.mkPen(m.colour, width=2),
                                             symbol=SYMBOLS[i % len(SYMBOLS)], symbolSize=6,
                                             symbolBrush=m.colour, name=m.column)
                       for i, m in enumerate(self.methods)}
        layout.addWidget(self.plot)
        self.updates = 0
        self._shown: dict[str, list[float]] = {}  # the history each curve shows
        state.comparison_changed.connect(self.refresh)

    def refresh(self, _method: str | None = None) -> None:
        for method in self.methods:
            key = method.key
            show_verdict(self.verdicts[key], self.state.comparison(key), heading(method))
            d = self.state.history(key)
            if self._shown.get(key) is not d:  # the state replaces a history it changes
                self.curves[key].setData(np.arange(len(d)), np.array(d, dtype=float))
                self._shown[key] = d
        self.updates += 1
