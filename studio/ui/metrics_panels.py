"""Expression preservation and identity similarity, updated for every new surrogate."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGroupBox, QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from studio.core.identity import SAME_PERSON_THRESHOLD
from studio.core.landmarks import BLENDSHAPE_NAMES
from studio.ui.state import HISTORY, StudioState

ROWS = [("joy", "Joy"), ("yaw", "Yaw °"), ("pitch", "Pitch °"), ("roll", "Roll °")]
ORIGINAL_COLOR = (90, 150, 230)
SURROGATE_COLOR = (240, 150, 60)


def short_name(blendshape: str) -> str:
    """mouthSmileLeft -> "mouthSmile L", so that five fit under one chart."""
    for side, tag in (("Left", " L"), ("Right", " R")):
        if blendshape.endswith(side):
            return blendshape[: -len(side)] + tag
    return blendshape


class ExpressionPanel(QGroupBox):
    """Original against surrogate: joy and angles with differences, smile decisions, and
    the top blendshapes of both as a bar chart."""

    def __init__(self, state: StudioState) -> None:
        super().__init__("Expression preservation")
        self.state = state
        layout = QVBoxLayout(self)
        self.table = QTableWidget(len(ROWS) + 1, 3)
        self.table.setHorizontalHeaderLabels(["original", "surrogate", "difference"])
        self.table.setVerticalHeaderLabels([label for _, label in ROWS] + ["Smile"])
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setFixedHeight(175)
        layout.addWidget(self.table)
        self.verdict = QLabel("")
        layout.addWidget(self.verdict)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(190)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1)
        self.plot.addLegend(offset=(-5, 5))
        self.bars_o = pg.BarGraphItem(x=[], height=[], width=0.38, brush=ORIGINAL_COLOR,
                                      name="original")
        self.bars_s = pg.BarGraphItem(x=[], height=[], width=0.38, brush=SURROGATE_COLOR,
                                      name="surrogate")
        self.plot.addItem(self.bars_o)
        self.plot.addItem(self.bars_s)
        layout.addWidget(self.plot)
        self.updates = 0
        state.comparison_changed.connect(self.refresh)
        state.face_changed.connect(self.refresh)

    def _set(self, row: int, col: int, text: str) -> None:
        item = QTableWidgetItem(text)
        item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
        self.table.setItem(row, col, item)

    def refresh(self) -> None:
        face = self.state.face
        comp = self.state.comparison
        sur = comp.surrogate if comp else None
        for r, (name, _) in enumerate(ROWS):
            o = getattr(face.attributes, name) if face else None
            s = getattr(sur.attributes, name) if sur else None
            f = "{:.2f}" if name == "joy" else "{:+.1f}"
            self._set(r, 0, f.format(o) if o is not None else "–")
            self._set(r, 1, f.format(s) if s is not None else "–")
            self._set(r, 2, f.format(s - o) if o is not None and s is not None else "–")
        smile = len(ROWS)
        self._set(smile, 0, ("yes" if face.attributes.smiling else "no") if face else "–")
        self._set(smile, 1, ("yes" if sur.attributes.smiling else "no") if sur else "–")
        kept = comp.smile_kept if comp else None
        self._set(smile, 2, "kept" if kept else ("changed" if kept is False else "–"))
        if comp is not None and sur is None:
            self.verdict.setText("No face found in the surrogate.")
        elif kept is not None:
            self.verdict.setText("Smile decision kept." if kept else "Smile decision changed!")
        else:
            self.verdict.setText("")
        self._bars(face, sur)
        self.updates += 1

    def _bars(self, face, sur) -> None:
        if face is None:
            self.bars_o.setOpts(x=[], height=[])
            self.bars_s.setOpts(x=[], height=[])
            return
        scores = face.blendshapes if sur is None else np.maximum(face.blendshapes,
                                                                 sur.blendshapes)
        top = [i for i in np.argsort(-scores) if BLENDSHAPE_NAMES[i] != "_neutral"][:5]
        x = np.arange(len(top))
        self.bars_o.setOpts(x=x - 0.2, height=face.blendshapes[top])
        self.bars_s.setOpts(x=x + 0.2, height=sur.blendshapes[top] if sur is not None else
                            np.zeros(len(top)))
        ticks = [(i, short_name(BLENDSHAPE_NAMES[j])) for i, j in enumerate(top)]
        self.plot.getAxis("bottom").setTicks([ticks])


class IdentityPanel(QGroupBox):
    """dlib distance against the 0.6 threshold, and the history of recent surrogates."""

    def __init__(self, state: StudioState) -> None:
        super().__init__("Identity similarity")
        self.state = state
        layout = QVBoxLayout(self)
        self.verdict = QLabel("–")
        self.verdict.setObjectName("identity_verdict")
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.verdict.setMinimumHeight(44)
        layout.addWidget(self.verdict)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setFixedHeight(170)
        self.plot.setMouseEnabled(False, False)
        self.plot.setYRange(0, 1.2)
        self.plot.setXRange(0, HISTORY - 1)
        self.plot.setLabel("left", "distance")
        self.plot.setLabel("bottom", "recent surrogates")
        band = pg.LinearRegionItem(values=(0, SAME_PERSON_THRESHOLD), orientation="horizontal",
                                   brush=pg.mkBrush(230, 60, 60, 40), movable=False)
        self.plot.addItem(band)
        self.plot.addItem(pg.InfiniteLine(pos=SAME_PERSON_THRESHOLD, angle=0,
                                          pen=pg.mkPen((200, 40, 40), width=2,
                                                       style=Qt.PenStyle.DashLine)))
        self.curve = self.plot.plot([], [], pen=pg.mkPen((40, 90, 170), width=2), symbol="o",
                                    symbolSize=6, symbolBrush=(40, 90, 170))
        layout.addWidget(self.plot)
        self.updates = 0
        state.comparison_changed.connect(self.refresh)
        state.image_changed.connect(self.refresh)

    def refresh(self) -> None:
        comp = self.state.comparison
        if comp is None or comp.distance is None:
            text = "No face in the surrogate" if comp is not None else "–"
            self.verdict.setText(text)
            self.verdict.setStyleSheet("background:#555; color:white; border-radius:6px")
        elif comp.same_person:
            self.verdict.setText(f"SAME PERSON  (distance {comp.distance:.2f} < "
                                 f"{SAME_PERSON_THRESHOLD})")
            self.verdict.setStyleSheet("background:#c62828; color:white; font-weight:bold; "
                                       "font-size:14px; border-radius:6px")
        else:
            self.verdict.setText(f"Different person  (distance {comp.distance:.2f} ≥ "
                                 f"{SAME_PERSON_THRESHOLD})")
            self.verdict.setStyleSheet("background:#2e7d32; color:white; font-weight:bold; "
                                       "font-size:14px; border-radius:6px")
        d = self.state.distances
        self.curve.setData(np.arange(len(d)), np.array(d, dtype=float))
        self.updates += 1
