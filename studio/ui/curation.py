"""Curation of a workspace: review each face's candidates by keyboard, with the metrics.

Keys: A accept, R reject, G regenerate with a new seed, Right/Left next/previous candidate,
Down/Up next/previous item, Space reveal or blur the original, Ctrl+Z undo.
"""

from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image
from PySide6.QtCore import Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.analysis.framing import original_crop
from studio.core.workspace.store import FILTERS, Workspace, face_analysis, needs_attention
from studio.ui.images import to_pixmap
from studio.ui.metrics_panels import ExpressionPanel, IdentityPanel
from studio.ui.state import StudioState
from studio.ui.workers import LatestOnly, run_in_thread

THUMB = 150
BORDER = {"pending": "#777", "accepted": "#2e7d32", "rejected": "#c62828"}


def blurred(rgb: np.ndarray) -> np.ndarray:
    """So blurred that nobody can be recognised: the reviewer reveals on purpose."""
    small = cv2.resize(rgb, (12, 12), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_CUBIC)


class ClickLabel(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:
        self.clicked.emit()


class CurationWindow(QMainWindow):
    def __init__(self, workspace: Workspace, engine_provider=lambda: None) -> None:
        super().__init__()
        self.ws = workspace
        self.engine_provider = engine_provider
        self.setWindowTitle(f"Curation – {workspace.path.name}")
        self.state = StudioState()  # the panels bind to it, as in the main window
        self.measure_jobs = LatestOnly(self)
        self.measure_jobs.result.connect(lambda _id, r: self.state.show_candidate(*r))
        self.measure_jobs.failed.connect(lambda _id, m: self.status(m, error=True))
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.setCurrentText("pending")
        self.items = QListWidget()
        self.original = ClickLabel()
        self.original.setFixedSize(THUMB, THUMB)
        self.original.setToolTip("Click (or Space) to reveal or blur the original")
        self.row = QHBoxLayout()
        self.thumbs: list[QLabel] = []
        self.info = QLabel("")
        self.message = QLabel("")
        self.expression = ExpressionPanel(self.state)
        self.identity = IdentityPanel(self.state)

        left = QVBoxLayout()
        left.addWidget(QLabel("Show"))
        left.addWidget(self.filter)
        left.addWidget(self.items, 1)
        self.export_button = QPushButton("Export accepted…")
        self.export_button.clicked.connect(self.open_export)
        left.addWidget(self.export_button)
        middle = QVBoxLayout()
        top = QHBoxLayout()
        top.addWidget(self.original)
        top.addLayout(self.row, 1)
        middle.addLayout(top)
        middle.addWidget(self.info)
        middle.addWidget(QLabel("A accept · R reject · G regenerate · ←/→ candidate · ↑/↓ item"
                                " · Space reveal · Ctrl+Z undo"))
        middle.addWidget(self.expression)
        middle.addWidget(self.message)
        right = QVBoxLayout()
        right.addWidget(self.identity)
        right.addStretch(1)
        central = QWidget()
        lay = QHBoxLayout(central)
        lay.addLayout(left, 1)
        lay.addLayout(middle, 3)
        lay.addLayout(right, 2)
        self.setCentralWidget(central)
        self.resize(1400, 820)

        self.revealed = False
        self.face_ids: list[int] = []
        self.candidates = []
        self.current = 0
        self._original_rgb: np.ndarray | None = None
        self._thumbs: dict[int, object] = {}  # candidate id -> QPixmap
        self._measured_id: int | None = None
        self.filter.currentTextChanged.connect(lambda _t: self.reload())
        self.items.currentRowChanged.connect(self._on_item)
        self.original.clicked.connect(self.toggle_reveal)
        for key, slot in (("A", lambda: self.decide("accepted")),
                          ("R", lambda: self.decide("rejected")), ("G", self.regenerate),
                          ("Right", lambda: self.step_candidate(1)),
                          ("Left", lambda: self.step_candidate(-1)),
                          ("Down", lambda: self.step_item(1)), ("Up", lambda: self.step_item(-1)),
                          ("Space", self.toggle_reveal), (QKeySequence.Undo, self.undo)):
            QShortcut(QKeySequence(key), self, slot)
        self.reload()

    # -- items -----------------------------------------------------------------------
    def reload(self, keep_face: int | None = None) -> None:
        kind = self.filter.currentText()
        faces = self.ws.faces()
        by_face: dict[int, list] = {}
        for c in self.ws.candidates():
            by_face.setdefault(c.face_id, []).append(c)
        self.face_ids = [f.id for f in faces
                         if any(needs_attention(c, kind) for c in by_face.get(f.id, []))]
        names = {f.id: f for f in faces}
        self.items.blockSignals(True)
        self.items.clear()
        for fid in self.face_ids:
            f, cands = names[fid], by_face[fid]
            done = sum(c.decision != "pending" for c in cands)
            QListWidgetItem(f"{f.key} · face {f.face_index} · {done}/{len(cands)} decided",
                            self.items)
        self.items.blockSignals(False)
        row = self.face_ids.index(keep_face) if keep_face in self.face_ids else 0
        if self.face_ids:
            self.status("")
            self.items.setCurrentRow(row)
            self._on_item(row)
        else:
            self.candidates = []
            self._show()
            self.status(f"Nothing to show under \"{kind}\".")

    def _on_item(self, row: int) -> None:
        if not 0 <= row < len(self.face_ids):
            return
        face = self.ws.face(self.face_ids[row])
        self.face = face
        self.candidates = self.ws.candidates(face.id)
        self.current = next((i for i, c in enumerate(self.candidates)
                             if c.decision == "pending"), 0)
        try:
            from studio.core.analysis.images import load_image

            rgb = load_image(face.original_path).rgb  # read only, never written
            self._original_rgb = original_crop(rgb, face.landmarks, size=THUMB)
        except Exception as exc:  # the original moved or vanished: the candidates remain
            self._original_rgb = None
            self.status(f"The original cannot be read any more: {exc}", error=True)
        self.revealed = False
        self._show()

    # -- display ---------------------------------------------------------------------
    def _show(self) -> None:
        if self._original_rgb is not None and self.candidates:
            img = self._original_rgb if self.revealed else blurred(self._original_rgb)
            self.original.setPixmap(to_pixmap(img, THUMB))
        else:
            self.original.clear()
        while len(self.thumbs) < len(self.candidates):
            label = ClickLabel()
            label.setFixedSize(THUMB, THUMB)
            index = len(self.thumbs)
            label.clicked.connect(lambda i=index: self.select(i))
            self.row.addWidget(label)
            self.thumbs.append(label)
        for i, label in enumerate(self.thumbs):
            if i >= len(self.candidates):
                label.hide()
                continue
            c = self.candidates[i]
            label.setPixmap(self._thumbnail(c.id))
            width = 5 if i == self.current else 2
            label.setStyleSheet(f"border:{width}px solid {BORDER[c.decision]}")
            label.setToolTip(f"{c.method} seed {c.seed}: {c.decision}")
            label.show()
        if self.candidates:
            c = self.candidates[self.current]
            d = c.distance
            self.info.setText(f"{c.method.upper()} seed {c.seed} · {c.decision}"
                              + (f" · distance {d:.2f}" if d is not None else " · no face found")
                              + (f" · note: {c.note}" if c.note else ""))
            if c.id != self._measured_id:  # a decision alone does not re-measure
                self._measured_id = c.id
                self._measure(c)
        else:
            self.info.setText("")

    def _thumbnail(self, candidate_id: int):
        """Decoded once per candidate: key presses redraw the row many times."""
        if candidate_id not in self._thumbs:
            rgb = np.asarray(Image.open(io.BytesIO(self.ws.image(candidate_id))).convert("RGB"))
            self._thumbs[candidate_id] = to_pixmap(rgb, THUMB - 8)
        return self._thumbs[candidate_id]

    def _measure(self, candidate) -> None:
        analyzer = getattr(self.engine_provider(), "analyzer", None)
        if analyzer is None:
            return
        from studio.core.metrics.comparison import compare

        face, png = face_analysis(self.face), self.ws.image(candidate.id)

        def job():
            rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            from studio.core.analysis.analyzer import ImageAnalysis

            analysis = ImageAnalysis("<workspace>", 0, 0, [face], {})
            return analysis, compare(analyzer, face, rgb), candidate.method

        self.measure_jobs.submit(job)

    def status(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color:#c62828; font-weight:bold" if error else "")

    # -- actions ---------------------------------------------------------------------
    def select(self, index: int) -> None:
        if 0 <= index < len(self.candidates):
            self.current = index
            self._show()

    def step_candidate(self, delta: int) -> None:
        if self.candidates:
            self.select((self.current + delta) % len(self.candidates))

    def step_item(self, delta: int) -> None:
        if self.face_ids:
            self.items.setCurrentRow((self.items.currentRow() + delta) % len(self.face_ids))

    def toggle_reveal(self) -> None:
        self.revealed = not self.revealed
        self._show()

    def decide(self, decision: str) -> None:
        if not self.candidates:
            return
        c = self.candidates[self.current]
        self.ws.decide(c.id, decision)
        self.status(f"{c.method.upper()} seed {c.seed}: {decision}.")
        self.candidates = self.ws.candidates(self.face.id)
        pending = [i for i, x in enumerate(self.candidates) if x.decision == "pending"]
        if pending:
            self.current = pending[0]
            self._show()
        else:  # this face is done: on to the next one the filter shows
            self.reload(keep_face=self.face.id)
            if self.filter.currentText() == "all":
                self.step_item(1)

    def undo(self) -> None:
        cid = self.ws.undo()
        if cid is None:
            self.status("Nothing to undo.")
            return
        self.reload(keep_face=self.ws.face_of(cid))
        self.select(next(i for i, c in enumerate(self.candidates) if c.id == cid))
        self.status("Undone.")

    def regenerate(self) -> None:
        engine = self.engine_provider()
        if engine is None or not self.candidates or self._original_rgb is None:
            self.status("The models are still loading.", error=True)
            return
        from studio.core.analysis.images import load_image
        from studio.core.surrogates.making import CandidateMaker

        c, face = self.candidates[self.current], self.face
        seed = max(x.seed for x in self.candidates) + 1

        def job():
            image = load_image(face.original_path)
            png, metrics = CandidateMaker(engine).make(c.method, image, face_analysis(face), seed)
            return png, metrics

        def done(value) -> None:
            png, metrics = value
            with self.ws.transaction() as db:
                self.ws.add_candidate(db, face.id, c.method, seed, face.attributes, metrics, png)
            self.candidates = self.ws.candidates(face.id)
            self.current = next(i for i, x in enumerate(self.candidates) if x.seed == seed
                                and x.method == c.method)
            self.status(f"New {c.method.upper()} candidate, seed {seed}.")
            self._show()

        self.status("Regenerating …")
        run_in_thread(self, job, on_done=done,
                      on_failed=lambda m: self.status(f"Could not regenerate: {m}", error=True))

    def open_export(self):
        from studio.ui.export_dialog import ExportDialog

        engine = self.engine_provider()
        if engine is None:
            self.status("The models are still loading.", error=True)
            return None
        dialog = ExportDialog(self.ws, engine.analyzer, self)
        dialog.show()
        return dialog

    def closeEvent(self, event) -> None:
        self.measure_jobs.result.disconnect()
        super().closeEvent(event)
