"""The crowd report in the app: the same figures as `studio crowd-report`, one tab each."""

from __future__ import annotations

from pathlib import Path

from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
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

from studio.ui.workers import run_in_thread

FIELDS = (("results", "Crowd results (MTurk CSV or Label Studio JSON)", "Results (*.csv *.json)"),
          ("mapping", "Private mapping from `studio export`", "CSV (*.csv)"),
          ("truth", "True labels (original_key,label)", "CSV (*.csv)"))


class CrowdReportWindow(QMainWindow):
    """Pick the three files, analyse in a worker, show the figures and the headline table."""

    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle("Crowd report")
        self.paths: dict[str, QLineEdit] = {}
        form = QFormLayout()
        for key, label, pattern in FIELDS:
            edit = QLineEdit()
            browse = QPushButton("…")
            browse.clicked.connect(lambda _=False, e=edit, p=pattern, t=label:
                                   e.setText(QFileDialog.getOpenFileName(self, t, "", p)[0]
                                             or e.text()))
            row = QHBoxLayout()
            row.addWidget(edit, 1)
            row.addWidget(browse)
            form.addRow(label, row)
            self.paths[key] = edit
        self.run = QPushButton("Analyse")
        self.summary = QLabel("")
        self.summary.setWordWrap(True)
        self.tabs = QTabWidget()
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addLayout(form)
        lay.addWidget(self.run)
        lay.addWidget(self.summary)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.resize(900, 760)
        self.analysis = None
        self.run.clicked.connect(self.analyse)

    def analyse(self) -> None:
        from studio.core.crowd.report import make_figures
        from studio.core.crowd.statistics import load_and_analyze

        paths = {k: self.paths[k].text().strip() for k, _, _ in FIELDS}
        missing = [k for k, p in paths.items() if not p or not Path(p).is_file()]
        if missing:
            self.summary.setText(f"<b style='color:#c62828'>Choose the {', '.join(missing)} "
                                 "file(s).</b>")
            return
        self.run.setEnabled(False)
        self.summary.setText("Analysing …")

        def job():
            a = load_and_analyze(Path(paths["results"]), Path(paths["mapping"]),
                                 Path(paths["truth"]))
            return a, make_figures(a)

        def failed(message: str) -> None:
            self.run.setEnabled(True)
            self.summary.setText(f"<b style='color:#c62828'>{message}</b>")

        run_in_thread(self, job, on_done=self._show, on_failed=failed)

    def _show(self, value) -> None:
        self.analysis, figures = value
        a = self.analysis
        self.run.setEnabled(True)
        self.tabs.clear()
        for name, fig in figures.items():
            self.tabs.addTab(FigureCanvasQTAgg(fig), name)
        lines = [f"{a.n_answers} answers from {a.n_records} records, "
                 f"{len(a.problems)} problems reported."]
        lines += [f"{v.version}: accuracy {v.accuracy:.3f} (95% CI {v.ci_low:.3f}–"
                  f"{v.ci_high:.3f}), {v.n_images} images" for v in a.versions]
        lines += [f"{t.a} − {t.b}: t = {t.t:.2f}, p = {t.p:.3g}" for t in a.tests]
        self.summary.setText("<br>".join(lines))
