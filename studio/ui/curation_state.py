"""The curation window's state: which faces the filter shows, the face under review, its
candidates, the chosen one, whether the original is revealed, how many originals are not
where they were recorded (a moved folder) and whether they are being relinked, the
bulk-accept rule with what it would accept, and the line of feedback.

Plain data and one signal per part; the window's widgets draw it, and the curation
controller (``studio.ui.curation_controller``) is the only one to change it. The metric panels bind
to ``compared``: the chosen candidate, measured again against its original face.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from PySide6.QtCore import QObject, Signal

from studio.ui.comparison_state import ComparisonState

if TYPE_CHECKING:
    from studio.core.workspace.rules import AcceptReport
    from studio.core.workspace.store import Candidate, FaceRecord


class CurationState(QObject):
    filter_changed = Signal(str)  # which candidates need attention
    items_changed = Signal()  # the faces the filter shows, and their list labels
    item_changed = Signal()  # the face under review (row, record and original crop)
    candidates_changed = Signal()  # that face's candidates, with their decisions
    current_changed = Signal(int)  # the candidate chosen among them
    revealed_changed = Signal(bool)  # the original shown sharp (True) or blurred
    message_changed = Signal(str, bool)  # text, is it an error
    missing_changed = Signal(int)  # originals found at none of their recorded places
    relinking_changed = Signal(bool)  # a relink is hashing files in a worker
    rule_changed = Signal()  # the bulk-accept rule, its options, and what it would accept

    def __init__(self, filter_kind: str = "pending") -> None:
        super().__init__()
        self.filter = filter_kind
        self.face_ids: list[int] = []
        self.labels: list[str] = []
        self.row: int | None = None  # of the face under review in face_ids
        self.face: FaceRecord | None = None
        self.original: np.ndarray | None = None  # its crop, None when it cannot be read
        self.candidates: list[Candidate] = []
        self.current = 0
        self.revealed = False
        self.message = ""
        self.error = False
        self.missing = 0
        self.missing_folder = ""  # the folder the missing originals were in
        self.relinking = False
        self.rule = ""  # "Accept all that pass this filter": the rule as typed
        self.rule_best = False  # one per face, the highest distance
        self.rule_override = False  # rejected candidates may be accepted too
        self.rule_preview: AcceptReport | None = None  # a dry run of it; None when it is bad
        self.rule_error = ""  # why the rule cannot be used
        self.compared = ComparisonState()

    @property
    def candidate(self) -> Candidate | None:
        """The chosen candidate."""
        return self.candidates[self.current] if 0 <= self.current < len(self.candidates) else None

    def set_filter(self, kind: str) -> None:
        if kind != self.filter:
            self.filter = kind
            self.filter_changed.emit(kind)

    def set_items(self, face_ids: list[int], labels: list[str]) -> None:
        if face_ids != self.face_ids or labels != self.labels:
            self.face_ids, self.labels = list(face_ids), list(labels)
            self.items_changed.emit()

    def set_item(self, row: int | None, face: FaceRecord | None,
                 original: np.ndarray | None) -> None:
        """The face under review; it starts blurred."""
        if row != self.row or face is not self.face or original is not self.original:
            self.row, self.face, self.original = row, face, original
            self.item_changed.emit()
        self.set_revealed(False)

    def set_candidates(self, candidates: list[Candidate], current: int = 0) -> None:
        if candidates != self.candidates:
            self.candidates = list(candidates)
            self.candidates_changed.emit()
        self.set_current(current)

    def set_current(self, index: int) -> None:
        if index != self.current:
            self.current = index
            self.current_changed.emit(index)

    def set_revealed(self, revealed: bool) -> None:
        if revealed != self.revealed:
            self.revealed = revealed
            self.revealed_changed.emit(revealed)

    def set_message(self, text: str, error: bool = False) -> None:
        if (text, error) != (self.message, self.error):
            self.message, self.error = text, error
            self.message_changed.emit(text, error)

    def set_missing(self, count: int, folder: str = "") -> None:
        if (count, folder) != (self.missing, self.missing_folder):
            self.missing, self.missing_folder = count, folder
            self.missing_changed.emit(count)

    def set_relinking(self, relinking: bool) -> None:
        if relinking != self.relinking:
            self.relinking = relinking
            self.relinking_changed.emit(relinking)

    def set_rule(self, text: str, best: bool, override: bool,
                 preview: AcceptReport | None, error: str = "") -> None:
        """The rule and a dry run of it: announced on every change, since the same rule
        counts differently once decisions change."""
        self.rule, self.rule_best, self.rule_override = text, best, override
        self.rule_preview, self.rule_error = preview, error
        self.rule_changed.emit()
