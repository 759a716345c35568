"""The export dialog: what `studio export` asks for, with the identity gate's verdicts."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from studio.core.errors import StudioError
from studio.core.workspace.store import Workspace
from studio.ui.workers import run_in_thread


class ExportDialog(QDialog):
    def __init__(self, workspace: Workspace, analyzer, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export an annotation batch")
        self.ws, self.analyzer = workspace, analyzer
        self.out_dir = QLineEdit(str(workspace.path.with_name(workspace.path.stem + "_batch")))
        browse = QPushButton("…")
        browse.clicked.connect(lambda: self.out_dir.setText(
            QFileDialog.getSaveFileName(self, "New batch folder", self.out_dir.text())[0]
            or self.out_dir.text()))
        row = QHBoxLayout()
        row.addWidget(self.out_dir, 1)
        row.addWidget(browse)
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("https://example.org/batch1/ (where images are served)")
        self.mturk = QCheckBox("MTurk CSV")
        self.mturk.setChecked(True)
        self.labelstudio = QCheckBox("Label Studio tasks and config")
        self.labelstudio.setChecked(True)
        self.expressions = QCheckBox("also ask for one of seven basic expressions")
        self.truth = QLineEdit()
        self.truth.setPlaceholderText("CSV original_key,label (needed for gold items)")
        self.gold = QSpinBox()
        self.repeats = QSpinBox()
        for box in (self.gold, self.repeats):
            box.setRange(0, 1000)
        form = QFormLayout()
        form.addRow("Folder (must be new)", row)
        form.addRow("Base URL", self.base_url)
        form.addRow("Formats", self.mturk)
        form.addRow("", self.labelstudio)
        form.addRow("", self.expressions)
        form.addRow("Known labels", self.truth)
        form.addRow("Gold items", self.gold)
        form.addRow("Repeated items", self.repeats)
        accepted = len(workspace.candidates(decision="accepted"))
        self.result = QLabel(f"{accepted} accepted candidates will be checked by the identity "
                             "gate; the private mapping is written beside the folder.")
        self.result.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.export_button = self.buttons.addButton("Export",
                                                    QDialogButtonBox.ButtonRole.ActionRole)
        self.export_button.clicked.connect(self.export)
        self.buttons.rejected.connect(self.reject)
        lay = QVBoxLayout(self)
        lay.addLayout(form)
        lay.addWidget(self.result)
        lay.addWidget(self.buttons)
        self.report = None

    def export(self) -> None:
        from studio.core.crowd.formats import read_truth
        from studio.core.workspace.export import export_batch

        formats = tuple(f for f, box in (("mturk", self.mturk), ("labelstudio", self.labelstudio))
                        if box.isChecked())
        truth_path = self.truth.text().strip()
        try:
            truth = read_truth(Path(truth_path))[0] if truth_path else None
        except (OSError, StudioError) as exc:
            self.result.setText(f"<b style='color:#c62828'>{exc}</b>")
            return
        args = dict(formats=formats, base_url=self.base_url.text().strip(), truth=truth,
                    gold=self.gold.value(), repeats=self.repeats.value(),
                    expressions=self.expressions.isChecked())
        out = Path(self.out_dir.text().strip())
        self.export_button.setEnabled(False)
        self.result.setText("Exporting …")

        def done(report) -> None:
            self.report = report
            self.export_button.setEnabled(True)
            refused = "".join(f"<br>REFUSED: {r}" for r in report.refused)
            self.result.setText(f"Exported {report.items} items ({report.gold} gold, "
                                f"{report.repeats} repeats) to {report.out_dir}.<br>Private "
                                f"mapping: {report.mapping}{refused}")

        def failed(message: str) -> None:
            self.export_button.setEnabled(True)
            self.result.setText(f"<b style='color:#c62828'>{message}</b>")

        run_in_thread(self, lambda: export_batch(self.ws, out, self.analyzer, **args),
                      on_done=done, on_failed=failed)
