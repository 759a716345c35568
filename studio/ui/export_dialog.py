"""The export dialog: what `studio export` asks for, with the identity gate's verdicts.

The options and the places written to are checked (``check_export``) before the export's
worker starts, so a bad folder or a missing base URL is said at once, in the dialog.
"""

from __future__ import annotations

import html
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

#: ``check_export``'s messages name the command's options; the dialog names its fields.
FIELDS = {"--base-url is needed": "A base URL is needed", "pass --truth T.csv":
          "choose a Known labels CSV"}


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

    def _refuse(self, message: str) -> None:
        for option, field in FIELDS.items():  # the core speaks of the command's options
            message = message.replace(option, field)
        self.result.setText(f"<b style='color:#c62828'>{html.escape(message)}</b>")

    def export(self) -> None:
        from studio.core.crowd.formats import read_truth
        from studio.core.workspace.export import check_export, export_batch

        formats = tuple(f for f, box in (("mturk", self.mturk), ("labelstudio", self.labelstudio))
                        if box.isChecked())
        if not formats:
            self._refuse("Choose at least one format.")
            return
        folder = self.out_dir.text().strip()
        if not folder:
            self._refuse("Choose a new folder for the batch.")
            return
        truth_path = self.truth.text().strip()
        try:
            truth = read_truth(Path(truth_path))[0] if truth_path else None
            args = dict(formats=formats, base_url=self.base_url.text().strip(), truth=truth,
                        gold=self.gold.value())
            out, mapping = check_export(folder, None, **args)
        except (OSError, StudioError) as exc:
            self._refuse(str(exc))
            return
        args.update(mapping=mapping, repeats=self.repeats.value(),
                    expressions=self.expressions.isChecked())
        self.export_button.setEnabled(False)
        self.result.setText("Exporting …")

        def done(report) -> None:
            self.report = report
            self.export_button.setEnabled(True)
            refused = "".join(f"<br>REFUSED: {html.escape(r)}" for r in report.refused)
            if report.set_aside:
                refused += (f"<br>{report.set_aside} damaged candidate row(s) of this salvaged "
                            "workspace were set aside and not exported.")
            self.result.setText(f"Exported {report.items} items ({report.gold} gold, "
                                f"{report.repeats} repeats) to {html.escape(str(report.out_dir))}"
                                f".<br>Private mapping: {html.escape(str(report.mapping))}"
                                f"{refused}")

        def failed(message: str) -> None:
            self.export_button.setEnabled(True)
            self._refuse(message)

        run_in_thread(self, lambda: export_batch(self.ws, out, self.analyzer, **args),
                      on_done=done, on_failed=failed)
