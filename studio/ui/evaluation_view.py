"""The evaluation in the app, for stakeholders: run it on a folder, see where surrogates sit
against blur, pixelation and masks. The same numbers and plots as ``studio evaluate``."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.evaluation.figures import (
    by_dataset,
    label_on_left,
    label_places,
)
from studio.core.evaluation.methods import METHODS, families, family_colour
from studio.core.evaluation.summary import BARS, TRADEOFF_AXES, MethodResult
from studio.core.evaluation.tables import checks, tables
from studio.core.surrogates.registry import REGISTRY
from studio.ui.evaluation_state import EvaluationState
from studio.ui.workers import ProgressSignal, run_in_thread

INTRO = ("Choose a folder of face photos: GENKI-4K, celeba-id and UTKFace folders bring their "
         "labels; in any other folder, sub-folders name the person.")


def _pen(method: str, width: float = 2.0) -> pg.mkPen:
    m = METHODS[method]
    return pg.mkPen(family_colour(m.family), width=width,
                    style=Qt.PenStyle.DashLine if m.light else Qt.PenStyle.SolidLine)


def _set_text(edit: QLineEdit, text: str) -> None:
    if edit.text() != text:  # keeps the cursor where the user types
        edit.setText(text)


class EvaluationWindow(QMainWindow):
    """Choose a folder and methods, run in a worker (with progress and Cancel), then read the
    privacy-utility scatter, the distance histograms, the ROC curves and the tables. The
    widgets write the options to an ``EvaluationState`` and draw the rest of it."""

    def __init__(self, engine_provider=None) -> None:
        super().__init__()
        self.setWindowTitle("Privacy and utility evaluation")
        self._engine_provider = engine_provider or (lambda: None)
        self.state = state = EvaluationState()
        self.folder = QLineEdit(state.folder)
        self.out = QLineEdit(state.out_dir)
        self.limit = QSpinBox()
        self.limit.setRange(0, 100000)
        self.limit.setValue(state.limit)
        self.limit.setSpecialValueText("all photos")
        self.limit.setToolTip("Photos evaluated from the folder (spread over it); 0 for all")
        form = QFormLayout()
        form.addRow("Photos", self._with_browse(self.folder, "Folder of face photos"))
        form.addRow("Report folder", self._with_browse(self.out, "Report folder"))
        form.addRow("Photos to use", self.limit)
        self.methods = {f: QCheckBox(REGISTRY.family_label(f)) for f in families()}
        boxes = QHBoxLayout()
        for family, box in self.methods.items():
            box.setChecked(family in state.families)
            boxes.addWidget(box)
        boxes.addStretch(1)
        form.addRow("Methods", boxes)
        self.run_button = QPushButton("Evaluate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setFormat("%v / %m faces")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextFormat(Qt.TextFormat.RichText)
        self.dataset = QComboBox()
        self.tabs = QTabWidget()
        self.scatter = pg.PlotWidget(background="w")
        self.histogram = pg.PlotWidget(background="w")
        self.roc = pg.PlotWidget(background="w")
        self.table = QTableWidget()
        self.table.horizontalHeader().setVisible(False)
        self.tabs.addTab(self.scatter, "Privacy vs utility")
        self.tabs.addTab(self.histogram, "Identity distance")
        self.tabs.addTab(self.roc, "Verification ROC")
        self.tabs.addTab(self.table, "Tables")
        buttons = QHBoxLayout()
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        central = QWidget()
        lay = QVBoxLayout(central)
        lay.addLayout(form)
        lay.addLayout(buttons)
        lay.addWidget(self.status)
        lay.addWidget(self.dataset)
        lay.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.resize(1000, 820)

        # Widgets write the state ...
        self.folder.textChanged.connect(lambda t: state.set_options(folder=t))
        self.out.textChanged.connect(lambda t: state.set_options(out_dir=t))
        self.limit.valueChanged.connect(lambda v: state.set_options(limit=v))
        for box in self.methods.values():
            box.toggled.connect(lambda _on: state.set_options(families=[
                f for f, b in self.methods.items() if b.isChecked()]))
        self.dataset.currentTextChanged.connect(state.set_dataset)
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(lambda: state.set_cancelled(True))
        # ... and draw it.
        state.options_changed.connect(self._show_options)
        state.running_changed.connect(self._show_running)
        state.progress_changed.connect(self._show_progress)
        state.message_changed.connect(self._show_message)
        state.result_changed.connect(self._show_result)
        state.dataset_changed.connect(self._show_dataset)
        self._progress = ProgressSignal(self)
        self._progress.changed.connect(self._on_progress)
        state.set_message(INTRO)

    def _with_browse(self, edit: QLineEdit, title: str) -> QHBoxLayout:
        browse = QPushButton("…")
        browse.clicked.connect(lambda: edit.setText(
            QFileDialog.getExistingDirectory(self, title, edit.text()) or edit.text()))
        row = QHBoxLayout()
        row.addWidget(edit, 1)
        row.addWidget(browse)
        return row

    @property
    def results(self) -> list[MethodResult]:
        return self.state.results

    # -- running ------------------------------------------------------------------------
    def start(self) -> None:
        from studio.core.evaluation.job import evaluate_folders

        state = self.state
        folder, out = state.folder.strip(), state.out_dir.strip()
        families = list(state.families)
        if not folder or not Path(folder).is_dir():
            state.set_message("Choose a folder of face photos.", error=True)
            return
        if not families:
            state.set_message("Choose at least one method.", error=True)
            return
        if not out:
            state.set_message("Choose a folder for the report.", error=True)
            return
        engine = self._engine_provider()
        if engine is not None and not (engine.can_generate and engine.can_render3d):
            engine = None  # still loading: the job loads its own
        state.set_cancelled(False)
        state.set_running(True)
        state.set_message("Loading the models …" if engine is None else "Evaluating …")
        limit = state.limit or None
        progress = self._progress

        def job():
            return evaluate_folders([folder], families, out, limit=limit, workers=1,
                                    engine=engine, progress=progress,
                                    stop=lambda: state.cancelled)

        run_in_thread(self, job, on_done=self._done, on_failed=self._failed)

    def _on_progress(self, done: int, total: int, _message: str) -> None:
        self.state.set_progress(done, total)
        if done == 1:
            self.state.set_message("Evaluating …")

    def _failed(self, message: str) -> None:
        self.state.set_message(message, error=True)
        self.state.set_running(False)

    def _done(self, evaluated) -> None:
        state, run = self.state, evaluated.run
        lines = [f"{len(run.measurements) // max(1, len(run.methods))} faces evaluated "
                 f"({run.computed} analysed now, the rest from the cache) in "
                 f"{run.seconds:.0f} s; report written to {evaluated.index}."]
        if state.cancelled:
            lines.insert(0, "Cancelled: the report covers the faces done so far.")
        lines += [f"GAN surrogate: {name} {value} — {'pass' if ok else 'FAIL'}"
                  for _d, name, value, ok in checks(evaluated.results)]
        lines += [f"{n} photos without a face" for n in run.no_face.values() if n]
        lines += run.problems[:5]
        state.set_result(evaluated)
        state.set_message("\n".join(lines))
        state.set_running(False)

    # -- drawing the state --------------------------------------------------------------
    def _show_options(self) -> None:
        state = self.state
        _set_text(self.folder, state.folder)
        _set_text(self.out, state.out_dir)
        if self.limit.value() != state.limit:
            self.limit.setValue(state.limit)
        for family, box in self.methods.items():
            box.blockSignals(True)  # one change of the state, not one per box
            box.setChecked(family in state.families)
            box.blockSignals(False)

    def _show_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)

    def _show_message(self, text: str, error: bool) -> None:
        text = "<br>".join(html.escape(line, quote=False) for line in text.split("\n"))
        self.status.setText(f"<b style='color:#c62828'>{text}</b>" if error else text)

    def _show_result(self) -> None:
        names = list(by_dataset(self.state.results))
        self.dataset.blockSignals(True)
        self.dataset.clear()
        self.dataset.addItems(names)
        self.dataset.blockSignals(False)
        self.dataset.setVisible(len(names) > 1)
        name = self.dataset.currentText()
        if name == self.state.dataset:
            self._show_dataset(name)  # the same data set, new results
        else:
            self.state.set_dataset(name)

    def _show_dataset(self, name: str) -> None:
        if self.dataset.currentText() != name:
            self.dataset.setCurrentText(name)
        group = by_dataset(self.state.results).get(name, [])
        self._plot_scatter(group)
        self._plot_histogram(group)
        self._plot_roc(group)
        self._fill_table(group)

    def _plot_scatter(self, group: list[MethodResult]) -> None:
        plot = self.scatter.getPlotItem()
        plot.clear()
        plot.setLabel("bottom", TRADEOFF_AXES[0])
        plot.setLabel("left", TRADEOFF_AXES[1])
        plot.setXRange(-0.03, 1.12)
        plot.setYRange(-0.03, 1.05)
        plot.addItem(pg.InfiniteLine(BARS["deidentified"], angle=90,
                                     pen=pg.mkPen("#bbb", style=Qt.PenStyle.DotLine)))
        plot.addItem(pg.InfiniteLine(BARS["smile_agreement"], angle=0,
                                     pen=pg.mkPen("#bbb", style=Qt.PenStyle.DotLine)))
        points = [r.tradeoff for r in group]
        for r, (x, label_y) in zip(group, label_places(points), strict=True):
            pen = _pen(r.method)
            light = METHODS[r.method].light
            plot.addItem(pg.ScatterPlotItem(
                [r.tradeoff[0]], [r.tradeoff[1]], size=14, pen=pg.mkPen(pen.color(), width=2),
                brush=pg.mkBrush("w" if light else pen.color())))
            left = label_on_left(x)
            label = pg.TextItem(r.label, color=pen.color(), anchor=(1 if left else 0, 1))
            label.setPos(x + (-0.015 if left else 0.015), label_y)
            plot.addItem(label)

    def _plot_histogram(self, group: list[MethodResult]) -> None:
        plot = self.histogram.getPlotItem()
        plot.clear()
        plot.addLegend(offset=(10, 10), labelTextColor="#222")
        plot.setLabel("bottom", "dlib distance, original to output")
        plot.setLabel("left", "density")
        bins = np.linspace(0, 1.2, 49)
        for r in group:
            d = r.distances[np.isfinite(r.distances)]
            if r.method == "original" or not d.size:
                continue
            counts, _ = np.histogram(d, bins=bins, density=True)
            plot.plot(bins, counts, stepMode="center", pen=_pen(r.method), name=r.label)
        plot.addItem(pg.InfiniteLine(SAME_PERSON_THRESHOLD, angle=90,
                                     pen=pg.mkPen("#c62828", width=2),
                                     label="0.6: same person ← | → another",
                                     labelOpts={"position": 0.95, "color": "#c62828"}))

    def _plot_roc(self, group: list[MethodResult]) -> None:
        plot = self.roc.getPlotItem()
        plot.clear()
        plot.addLegend(offset=(10, 10), labelTextColor="#222")
        plot.setLogMode(x=True, y=False)
        plot.setLabel("bottom", "false accept rate (impostor pairs)")
        plot.setLabel("left", "true accept rate (original vs its output)")
        for r in group:
            if r.roc is None:
                continue
            far = np.maximum(r.roc.far, 1e-5)
            plot.plot(far, r.roc.tar, stepMode=None, pen=_pen(r.method),
                      name=f"{r.label} (TAR@1e-3 {r.tar_at_far_1e3:.0%})")
        chance = np.logspace(-5, 0, 60)
        plot.plot(chance, chance, pen=pg.mkPen("#bbb"))
        plot.addItem(pg.InfiniteLine(-3, angle=90, pen=pg.mkPen("#888", style=Qt.PenStyle.DotLine)))

    def _fill_table(self, group: list[MethodResult]) -> None:
        rows: list[list[str]] = []
        for t in tables(group) if group else []:
            rows.append([t.title])
            rows.append(t.head)
            rows.extend(t.rows)
            rows.append([])
        self.table.clear()
        self.table.setRowCount(len(rows))
        self.table.setColumnCount(max((len(r) for r in rows), default=0))
        for i, row in enumerate(rows):
            for j, text in enumerate(row):
                item = QTableWidgetItem(text)
                if len(row) == 1 or (i > 0 and rows[i - 1] and len(rows[i - 1]) == 1):
                    font = item.font()
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(i, j, item)
        self.table.resizeColumnsToContents()
