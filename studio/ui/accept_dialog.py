""""Accept all that pass this filter": a rule over the stored metrics, what it would accept
counted as it is typed, then Accept; the accepted group is one step of the window's undo.

The dialog draws ``CurationState``'s rule part; the controller reads the rule (a dry run of
``core.workspace.rules.accept_by_rule``) and accepts.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QLineEdit,
    QVBoxLayout,
)

from studio.core.workspace.rules import names_help
from studio.ui.curation_controller import CurationController
from studio.ui.curation_state import CurationState

EXAMPLE = "distance >= 0.65 and smile_kept and face_found"


class AcceptRuleDialog(QDialog):
    def __init__(self, state: CurationState, controller: CurationController,
                 parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Accept all that pass this filter")
        self.state, self.controller = state, controller
        self.rule = QLineEdit(state.rule or EXAMPLE)
        self.rule.setToolTip("Compare these names with numbers (==, !=, <, <=, >, >=), joined "
                             "by and, or, not:\n" + names_help())
        self.best = QCheckBox("Only the best per face (the highest distance)")
        self.best.setChecked(state.rule_best)
        self.override = QCheckBox("Also accept candidates rejected before")
        self.override.setChecked(state.rule_override)
        self.count = QLabel("")
        self.count.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        role = QDialogButtonBox.ButtonRole.ActionRole
        self.accept_button = self.buttons.addButton("Accept", role)
        self.undo_button = self.buttons.addButton("Undo", role)
        self.undo_button.setToolTip("Undo the last step (Ctrl+Z in the window): a bulk accept "
                                    "comes back whole")
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel("Accept the undecided candidates for which this rule is true "
                             "(hover for the names):"))
        lay.addWidget(self.rule)
        lay.addWidget(self.best)
        lay.addWidget(self.override)
        lay.addWidget(self.count)
        lay.addWidget(self.buttons)

        self.rule.textChanged.connect(self.recount)
        self.best.toggled.connect(self.recount)
        self.override.toggled.connect(self.recount)
        self.accept_button.clicked.connect(controller.accept_rule)
        self.undo_button.clicked.connect(controller.undo)
        self.buttons.rejected.connect(self.reject)
        self.finished.connect(lambda _result: controller.clear_rule())
        state.rule_changed.connect(self._show)
        self.recount()

    def recount(self, *_args) -> None:
        """What the rule, as typed, would accept now (the controller's dry run)."""
        self.controller.preview_rule(self.rule.text(), self.best.isChecked(),
                                     self.override.isChecked())

    def _show(self) -> None:
        state, preview = self.state, self.state.rule_preview
        if preview is None:
            self.count.setText(state.rule_error)
            self.count.setStyleSheet("color:#c62828")
            self.accept_button.setEnabled(False)
            self.accept_button.setText("Accept")
            return
        methods = ", ".join(f"{m} {len(ids)}" for m, ids in preview.accepted.items() if ids)
        self.count.setText(
            f"Would accept {preview.count} candidate{'s' * (preview.count != 1)}"
            + (f" ({methods})" if methods else "")
            + f"; {preview.faces_none} of {preview.faces} faces would have none.")
        self.count.setStyleSheet("")
        self.accept_button.setEnabled(preview.count > 0)
        self.accept_button.setText(f"Accept {preview.count}")
