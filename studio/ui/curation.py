"""Curation of a workspace: review each face's candidates by keyboard, with the metrics.

Keys: A accept, R reject, G regenerate with a new seed, Right/Left next/previous candidate,
Down/Up next/previous item, Space reveal or blur the original, Ctrl+Z undo.

``CurationController`` reads and writes the workspace and keeps the ``CurationState`` up to
date; ``CurationWindow``'s widgets only draw that state and pass key presses on.
"""

from __future__ import annotations

import contextlib
import io

import cv2
import numpy as np
from PIL import Image
from PySide6.QtCore import QObject, Signal
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
from studio.ui.curation_state import CurationState
from studio.ui.images import to_pixmap
from studio.ui.metrics_panels import ExpressionPanel, IdentityPanel
from studio.ui.workers import LatestOnly, run_in_thread

THUMB = 150
BORDER = {"pending": "#777", "accepted": "#2e7d32", "rejected": "#c62828"}


def blurred(rgb: np.ndarray) -> np.ndarray:
    """So blurred that nobody can be recognised: the reviewer reveals on purpose."""
    small = cv2.resize(rgb, (12, 12), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_CUBIC)


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


class CurationController(QObject):
    """The workspace's side of the window: what the filter shows, decisions and undo,
    regenerating, and measuring the chosen candidate in a worker."""

    def __init__(self, state: CurationState, workspace: Workspace, engine_provider) -> None:
        super().__init__()
        self.state, self.ws, self.engine_provider = state, workspace, engine_provider
        self.measure_jobs = LatestOnly(self)
        self.measure_jobs.result.connect(self._on_measured)
        self.measure_jobs.failed.connect(lambda _id, m: state.set_message(m, error=True))
        self._face = None  # the reviewed face as the comparison code takes it
        self._measured_id: int | None = None
        state.filter_changed.connect(lambda _kind: self.reload())
        state.candidates_changed.connect(self._measure_current)
        state.current_changed.connect(self._measure_current)

    # -- items -----------------------------------------------------------------------
    def reload(self, keep_face: int | None = None) -> None:
        """The faces with a candidate the filter asks about; ``keep_face`` stays chosen."""
        state, kind = self.state, self.state.filter
        faces = self.ws.faces()
        by_face: dict[int, list] = {}
        for c in self.ws.candidates():
            by_face.setdefault(c.face_id, []).append(c)
        shown = [f for f in faces if any(needs_attention(c, kind) for c in by_face.get(f.id, []))]
        labels = []
        for f in shown:
            cands = by_face[f.id]
            done = sum(c.decision != "pending" for c in cands)
            labels.append(f"{f.key} · face {f.face_index} · {done}/{len(cands)} decided")
        face_ids = [f.id for f in shown]
        state.set_items(face_ids, labels)
        if face_ids:
            state.set_message("")
            self.choose_item(face_ids.index(keep_face) if keep_face in face_ids else 0)
        else:
            self._face = None
            state.set_item(None, None, None)
            state.set_candidates([])
            state.set_message(f"Nothing to show under \"{kind}\".")

    def choose_item(self, row: int) -> None:
        """Review face ``row``, from its first pending candidate, the original blurred."""
        state = self.state
        if not 0 <= row < len(state.face_ids):
            return
        face = self.ws.face(state.face_ids[row])
        candidates = self.ws.candidates(face.id)
        current = next((i for i, c in enumerate(candidates) if c.decision == "pending"), 0)
        error = None
        try:
            from studio.core.analysis.images import load_image

            rgb = load_image(face.original_path).rgb  # read only, never written
            original = original_crop(rgb, face.landmarks, size=THUMB)
        except Exception as exc:  # the original moved or vanished: the candidates remain
            original, error = None, f"The original cannot be read any more: {exc}"
        self._face = face_analysis(face)
        state.set_item(row, face, original)
        state.set_candidates(candidates, current)
        if error:
            state.set_message(error, error=True)

    def step_item(self, delta: int) -> None:
        if self.state.face_ids:
            row = self.state.row or 0
            self.choose_item((row + delta) % len(self.state.face_ids))

    def candidate_rgb(self, candidate_id: int) -> np.ndarray:
        return decode(self.ws.image(candidate_id))

    # -- candidates ------------------------------------------------------------------
    def select(self, index: int) -> None:
        if 0 <= index < len(self.state.candidates):
            self.state.set_current(index)

    def step_candidate(self, delta: int) -> None:
        if self.state.candidates:
            self.select((self.state.current + delta) % len(self.state.candidates))

    def toggle_reveal(self) -> None:
        self.state.set_revealed(not self.state.revealed)

    def decide(self, decision: str) -> None:
        state, c = self.state, self.state.candidate
        if c is None or state.face is None:
            return
        self.ws.decide(c.id, decision)
        state.set_message(f"{c.method.upper()} seed {c.seed}: {decision}.")
        face_id = state.face.id
        candidates = self.ws.candidates(face_id)
        pending = [i for i, x in enumerate(candidates) if x.decision == "pending"]
        if pending:
            state.set_candidates(candidates, pending[0])
        else:  # this face is done: on to the next one the filter shows
            self.reload(keep_face=face_id)
            if state.filter == "all":
                self.step_item(1)

    def undo(self) -> None:
        cid = self.ws.undo()
        if cid is None:
            self.state.set_message("Nothing to undo.")
            return
        self.reload(keep_face=self.ws.face_of(cid))
        self.select(next(i for i, c in enumerate(self.state.candidates) if c.id == cid))
        self.state.set_message("Undone.")

    def regenerate(self) -> None:
        state, engine = self.state, self.engine_provider()
        c, face = state.candidate, state.face
        if engine is None or c is None or face is None or state.original is None:
            state.set_message("The models are still loading.", error=True)
            return
        from studio.core.analysis.images import load_image
        from studio.core.surrogates.making import CandidateMaker

        seed = max(x.seed for x in state.candidates) + 1

        def job():
            image = load_image(face.original_path)
            return CandidateMaker(engine).make(c.method, image, face_analysis(face), seed)

        def done(value) -> None:
            png, metrics = value
            with self.ws.transaction() as db:
                self.ws.add_candidate(db, face.id, c.method, seed, face.attributes, metrics, png)
            if state.face is not None and state.face.id == face.id:  # still under review
                candidates = self.ws.candidates(face.id)
                state.set_candidates(candidates, next(
                    i for i, x in enumerate(candidates) if x.seed == seed and x.method == c.method))
            state.set_message(f"New {c.method.upper()} candidate, seed {seed}.")

        state.set_message("Regenerating …")
        run_in_thread(self, job, on_done=done, on_failed=lambda m: state.set_message(
            f"Could not regenerate: {m}", error=True))

    # -- measuring -------------------------------------------------------------------
    def _measure_current(self) -> None:
        c = self.state.candidate
        if c is None or c.id == self._measured_id:  # a decision alone does not re-measure
            return
        self._measured_id = c.id
        analyzer = getattr(self.engine_provider(), "analyzer", None)
        if analyzer is None or self._face is None:
            return
        from studio.core.metrics.comparison import compare

        face, png, method = self._face, self.ws.image(c.id), c.method
        self.measure_jobs.submit(lambda: (face, compare(analyzer, face, decode(png)), method))

    def _on_measured(self, _job_id: int, value: tuple) -> None:
        face, comparison, method = value
        if face is self._face:  # not a face the reviewer has left
            self.state.compared.show(face, comparison if method == "gan" else None,
                                     comparison if method == "3d" else None)

    def stop(self) -> None:
        """The window is closing: results still in flight are dropped."""
        with contextlib.suppress(RuntimeError, TypeError):  # stopped before
            self.measure_jobs.result.disconnect(self._on_measured)


class ClickLabel(QLabel):
    clicked = Signal()

    def mousePressEvent(self, event) -> None:
        self.clicked.emit()


class CurationWindow(QMainWindow):
    """Draws the ``CurationState``; keys and clicks go to the ``CurationController``."""

    def __init__(self, workspace: Workspace, engine_provider=lambda: None) -> None:
        super().__init__()
        self.ws = workspace
        self.engine_provider = engine_provider
        self.setWindowTitle(f"Curation – {workspace.path.name}")
        self.state = state = CurationState()
        self.controller = control = CurationController(state, workspace, engine_provider)
        self.filter = QComboBox()
        self.filter.addItems(FILTERS)
        self.filter.setCurrentText(state.filter)
        self.items = QListWidget()
        self.original = ClickLabel()
        self.original.setFixedSize(THUMB, THUMB)
        self.original.setToolTip("Click (or Space) to reveal or blur the original")
        self.row = QHBoxLayout()
        self.thumbs: list[QLabel] = []
        self.info = QLabel("")
        self.message = QLabel("")
        self.expression = ExpressionPanel(state.compared)
        self.identity = IdentityPanel(state.compared)

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

        self._thumbs: dict[int, object] = {}  # candidate id -> QPixmap
        self.filter.currentTextChanged.connect(state.set_filter)
        self.items.currentRowChanged.connect(control.choose_item)
        self.original.clicked.connect(control.toggle_reveal)
        state.filter_changed.connect(self.filter.setCurrentText)
        state.items_changed.connect(self._show_items)
        state.item_changed.connect(self._show_item)
        state.revealed_changed.connect(self._show_original)
        state.candidates_changed.connect(self._show_candidates)
        state.current_changed.connect(self._show_candidates)
        state.message_changed.connect(self._show_message)
        for key, slot in (("A", lambda: control.decide("accepted")),
                          ("R", lambda: control.decide("rejected")), ("G", control.regenerate),
                          ("Right", lambda: control.step_candidate(1)),
                          ("Left", lambda: control.step_candidate(-1)),
                          ("Down", lambda: control.step_item(1)),
                          ("Up", lambda: control.step_item(-1)),
                          ("Space", control.toggle_reveal), (QKeySequence.Undo, control.undo)):
            QShortcut(QKeySequence(key), self, slot)
        control.reload()

    # -- drawing the state -------------------------------------------------------------
    def _show_items(self) -> None:
        self.items.blockSignals(True)
        self.items.clear()
        for label in self.state.labels:
            QListWidgetItem(label, self.items)
        self.items.blockSignals(False)

    def _show_item(self) -> None:
        if self.state.row is not None and self.items.currentRow() != self.state.row:
            self.items.blockSignals(True)
            self.items.setCurrentRow(self.state.row)
            self.items.blockSignals(False)
        self._show_original()

    def _show_original(self) -> None:
        rgb = self.state.original
        if rgb is not None and self.state.candidates:
            self.original.setPixmap(to_pixmap(rgb if self.state.revealed else blurred(rgb), THUMB))
        else:
            self.original.clear()

    def _show_candidates(self) -> None:
        state = self.state
        while len(self.thumbs) < len(state.candidates):
            label = ClickLabel()
            label.setFixedSize(THUMB, THUMB)
            index = len(self.thumbs)
            label.clicked.connect(lambda i=index: self.controller.select(i))
            self.row.addWidget(label)
            self.thumbs.append(label)
        for i, label in enumerate(self.thumbs):
            if i >= len(state.candidates):
                label.hide()
                continue
            c = state.candidates[i]
            label.setPixmap(self._thumbnail(c.id))
            width = 5 if i == state.current else 2
            label.setStyleSheet(f"border:{width}px solid {BORDER[c.decision]}")
            label.setToolTip(f"{c.method} seed {c.seed}: {c.decision}")
            label.show()
        c = state.candidate
        if c is None:
            self.info.setText("")
        else:
            d = c.distance
            self.info.setText(f"{c.method.upper()} seed {c.seed} · {c.decision}"
                              + (f" · distance {d:.2f}" if d is not None else " · no face found")
                              + (f" · note: {c.note}" if c.note else ""))
        self._show_original()  # hidden while there is no candidate to compare it with

    def _thumbnail(self, candidate_id: int):
        """Decoded once per candidate: key presses redraw the row many times."""
        if candidate_id not in self._thumbs:
            self._thumbs[candidate_id] = to_pixmap(self.controller.candidate_rgb(candidate_id),
                                                   THUMB - 8)
        return self._thumbs[candidate_id]

    def _show_message(self, text: str, error: bool) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color:#c62828; font-weight:bold" if error else "")

    # -- dialogs ---------------------------------------------------------------------
    def open_export(self):
        from studio.ui.export_dialog import ExportDialog

        engine = self.engine_provider()
        if engine is None:
            self.state.set_message("The models are still loading.", error=True)
            return None
        dialog = ExportDialog(self.ws, engine.analyzer, self)
        dialog.show()
        return dialog

    def closeEvent(self, event) -> None:
        self.controller.stop()
        super().closeEvent(event)
