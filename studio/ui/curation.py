"""Curation of a workspace: review each face's candidates by keyboard, with the metrics.

Keys: A accept, R reject, G regenerate with a new seed, Right/Left next/previous candidate,
Down/Up next/previous item, Space reveal or blur the original, Ctrl+Z undo (a bulk accept,
Edit > Accept all that pass this filter…, comes back whole).

``CurationController`` (``curation_controller``) reads and writes the workspace and keeps the
``CurationState`` up to date; ``CurationWindow``'s widgets only draw that state and pass key
presses on. When originals are not where they were recorded, a notice offers File > Relink
originals….
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.workspace.rules import FILTERS
from studio.core.workspace.store import Workspace
from studio.ui.curation_controller import THUMB, CurationController
from studio.ui.curation_state import CurationState
from studio.ui.images import to_pixmap
from studio.ui.metrics_panels import ExpressionPanel, IdentityPanel

__all__ = ["CurationController", "CurationWindow", "blurred"]
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
    """Draws the ``CurationState``; keys and clicks go to the ``CurationController``."""

    def __init__(self, workspace: Workspace, engine_provider=lambda: None) -> None:
        super().__init__()
        self.ws = workspace
        self.engine_provider = engine_provider
        self.setWindowTitle(f"Curation – {workspace.path.name}")
        self.state = state = CurationState()
        self.controller = control = CurationController(state, workspace, engine_provider)
        self.filter = QComboBox()
        self.filter.addItems(list(FILTERS))
        self.filter.setCurrentText(state.filter)
        self.items = QListWidget()
        self.original = ClickLabel()
        self.original.setFixedSize(THUMB, THUMB)
        self.original.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.original.setToolTip("Click (or Space) to reveal or blur the original")
        self.row = QHBoxLayout()
        self.thumbs: list[QLabel] = []
        self.info = QLabel("")
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.expression = ExpressionPanel(state.compared)
        self.identity = IdentityPanel(state.compared)

        left = QVBoxLayout()
        left.addWidget(QLabel("Show"))
        left.addWidget(self.filter)
        left.addWidget(self.items, 1)
        self.accept_rule_button = QPushButton("Accept all that pass this filter…")
        self.accept_rule_button.setToolTip("Accept, in one step, every undecided candidate "
                                           "for which a rule over its metrics is true")
        self.accept_rule_button.clicked.connect(self.open_accept_rule)
        left.addWidget(self.accept_rule_button)
        self.export_button = QPushButton("Export accepted…")
        self.export_button.clicked.connect(self.open_export)
        left.addWidget(self.export_button)
        self.accept_dialog = None
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
        outer = QVBoxLayout(central)
        outer.addWidget(self._build_notice())
        lay = QHBoxLayout()
        lay.addLayout(left, 1)
        lay.addLayout(middle, 3)
        lay.addLayout(right, 2)
        outer.addLayout(lay, 1)
        self.setCentralWidget(central)
        self._build_menu()
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
        state.missing_changed.connect(self._show_missing)
        state.relinking_changed.connect(self._show_missing)
        for key, slot in (("A", lambda: control.decide("accepted")),
                          ("R", lambda: control.decide("rejected")), ("G", control.regenerate),
                          ("Right", lambda: control.step_candidate(1)),
                          ("Left", lambda: control.step_candidate(-1)),
                          ("Down", lambda: control.step_item(1)),
                          ("Up", lambda: control.step_item(-1)),
                          ("Space", control.toggle_reveal), (QKeySequence.Undo, control.undo)):
            QShortcut(QKeySequence(key), self, slot)
        control.check_originals()
        control.reload()
        self._show_missing()

    def _build_notice(self) -> QFrame:
        """Shown while originals are missing: the reviewer cannot reveal or regenerate."""
        self.notice = QFrame()
        self.notice.setStyleSheet("QFrame { background:#fff3cd; border:1px solid #e0b252; }"
                                  " QLabel { border:none; color:#5c4300; }")
        self.notice_text = QLabel("")
        self.notice_text.setWordWrap(True)
        self.relink_button = QPushButton("Relink originals…")
        self.relink_button.clicked.connect(self.open_relink)
        row = QHBoxLayout(self.notice)
        row.addWidget(self.notice_text, 1)
        row.addWidget(self.relink_button)
        self.notice.hide()
        return self.notice

    def _build_menu(self) -> None:
        self.relink_action = QAction("&Relink originals…", self)
        self.relink_action.setStatusTip("Point the workspace at the folder its originals "
                                        "were moved to (each file is checked by its sha256)")
        self.relink_action.triggered.connect(self.open_relink)
        export_action = QAction("&Export accepted…", self)
        export_action.triggered.connect(self.open_export)
        close_action = QAction("&Close", self)
        close_action.setShortcut(QKeySequence.Close)
        close_action.triggered.connect(self.close)
        menu = self.menuBar().addMenu("&File")
        menu.addAction(self.relink_action)
        menu.addAction(export_action)
        menu.addSeparator()
        menu.addAction(close_action)
        self.accept_rule_action = QAction("&Accept all that pass this filter…", self)
        self.accept_rule_action.triggered.connect(self.open_accept_rule)
        self.menuBar().addMenu("&Edit").addAction(self.accept_rule_action)

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
            if self.state.face is not None and self.state.candidates:  # moved or unreadable
                self.original.setText("original\nnot found")

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

    def _show_missing(self, *_args) -> None:
        n, busy = self.state.missing, self.state.relinking
        self.notice.setVisible(n > 0 or busy)
        if n:
            self.notice_text.setText(
                f"<b>{n} original{'s are' if n != 1 else ' is'} not where "
                f"{'they were' if n != 1 else 'it was'} recorded</b> (in "
                f"{self.state.missing_folder}): the folder may have moved. Until it is "
                "relinked, those faces cannot be revealed or regenerated.")
        elif busy:
            self.notice_text.setText("Relinking the originals …")
        self.relink_button.setEnabled(not busy)
        self.relink_action.setEnabled(not busy)

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

    def open_accept_rule(self):
        """The rule dialog (one, kept for its rule); it stays open beside the review."""
        from studio.ui.accept_dialog import AcceptRuleDialog

        if self.accept_dialog is None:
            self.accept_dialog = AcceptRuleDialog(self.state, self.controller, self)
        elif not self.accept_dialog.isVisible():
            self.accept_dialog.recount()  # decisions may have changed while it was closed
        self.accept_dialog.show()
        self.accept_dialog.raise_()
        return self.accept_dialog

    def open_relink(self) -> None:
        """Ask where the folder of the missing originals is now, then relink in a worker."""
        old = self.state.missing_folder
        if not old:
            self.state.set_message("Every original is where it was recorded.")
            return
        start = next((str(p) for p in Path(old).parents if p.is_dir()), str(Path.home()))
        new = QFileDialog.getExistingDirectory(
            self, f"Where is {os.path.basename(old) or old} now? (it was {old})", start)
        if new:
            self.controller.relink(old, new)

    def closeEvent(self, event) -> None:
        self.controller.stop()
        super().closeEvent(event)
