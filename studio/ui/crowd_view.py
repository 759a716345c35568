"""The crowd report in the app: the same figures as `studio crowd-report`, one tab each."""

from __future__ import annotations

import html
from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.ui.crowd_state import CrowdReportState
from studio.ui.workers import run_in_thread

FIELDS = (("results", "Crowd results (MTurk CSV or Label Studio JSON)", "Results (*.csv *.json)"),
          ("mapping", "Private mapping from `studio export`", "CSV (*.csv)"),
          ("truth", "True labels (original_key,label)", "CSV (*.csv)"))


class CrowdReportWindow(QMainWindow):
    """Pick the three files, analyse in a worker, show the figures and the headline table.
    The widgets write the files to a ``CrowdReportState`` and draw the rest of it."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Crowd report")
        self.state = state = CrowdReportState()
        self.paths: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for key, label, pattern in FIELDS:
            edit = QLineEdit(state.paths[key])
            browse = QPushButton("…")
            browse.clicked.connect(lambda _=False, e=edit, p=pattern, t=label:
                                   e.setText(QFileDialog.getOpenFileName(self, t, "", p)[0]
                                             or e.text()))
            edit.textChanged.connect(lambda text, k=key: state.set_paths(**{k: text}))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            self.paths[key] = edit
        self.run = QPushButton("Analyse")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.tabs = QTabWidget()
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addLayout(form)
        lay.addWidget(self.run)
        lay.addWidget(self.summary)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.resize(900, 760)
        self.run.clicked.connect(self.analyse)
        state.paths_changed.connect(self._show_paths)
        state.running_changed.connect(lambda running: self.run.setEnabled(not running))
        state.result_changed.connect(self._show_result)
        state.message_changed.connect(self._show_message)

    @property
    def analysis(self):
        return self.state.analysis

    def analyse(self) -> None:
        from studio.core.crowd.report import make_figures
        from studio.core.crowd.statistics import load_and_analyze

        state = self.state
        paths = {k: p.strip() for k, p in state.paths.items()}
        missing = [k for k, p in paths.items() if not p or not Path(p).is_file()]
        if missing:
            state.set_message(f"Choose the {', '.join(missing)} file(s).", error=True)
            return
        state.set_running(True)
        state.set_message("Analysing …")

        def job():
            a = load_and_analyze(Path(paths["results"]), Path(paths["mapping"]),
                                 Path(paths["truth"]))
            return a, make_figures(a)

        def failed(message: str) -> None:
            state.set_message(message, error=True)
            state.set_running(False)

        run_in_thread(self, job, on_done=self._done, on_failed=failed)

    def _done(self, value) -> None:
        a, figures = value
        lines = [f"{a.n_answers} answers from {a.n_records} records, "
                 f"{len(a.problems)} problems reported."]
        lines += [f"{v.version}: accuracy {v.accuracy:.3f} (95% CI {v.ci_low:.3f}–"
                  f"{v.ci_high:.3f}), {v.n_images} images" for v in a.versions]
        lines += [f"{t.a} − {t.b}: t = {t.t:.2f}, p = {t.p:.3g}" for t in a.tests]
        if a.problems:  # the first few, as the command line shows them; all are in the report
            lines += ["The first problems:", *(f"  {p}" for p in a.problems[:5])]
        self.state.set_result(a, figures)
        self.state.set_message("\n".join(lines))
        self.state.set_running(False)

    # -- drawing the state --------------------------------------------------------------
    def _show_paths(self) -> None:
        for key, edit in self.paths.items():
            if edit.text() != self.state.paths[key]:  # keeps the cursor where the user types
                edit.setText(self.state.paths[key])

    def _show_result(self) -> None:
        self.tabs.clear()
        for name, fig in self.state.figures.items():
            self.tabs.addTab(FigureCanvasQTAgg(fig), name)

    def _show_message(self, text: str, error: bool) -> None:
        text = "<br>".join(html.escape(line, quote=False) for line in text.split("\n"))
        self.summary.setText(f"<b style='color:#c62828'>{text}</b>" if error else text)
