"""The studio window: photo and landmarks, sliders, surrogate, and the comparison panels;
opening, saving and the other windows. Its actions and menus are laid out in
``window_menus``."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from studio.core.analysis.images import SUPPORTED_SUFFIXES
from studio.ui.controller import Controller
from studio.ui.metrics_panels import ExpressionPanel, IdentityPanel
from studio.ui.panel3d import Surrogate3DView
from studio.ui.panels import AttributesPanel, OverlayChooser, SliderPanel, SurrogateView
from studio.ui.photo_view import PhotoBar, PhotoView
from studio.ui.state import StudioState
from studio.ui.window_menus import build_menus
from studio.ui.workers import run_in_thread

IMAGE_FILTER = "Images (" + " ".join(f"*{s}" for s in SUPPORTED_SUFFIXES) + ")"


def _column(*widgets: QWidget) -> QWidget:
    w = QWidget()
    layout = QVBoxLayout(w)
    layout.setContentsMargins(4, 4, 4, 4)
    for x in widgets:
        layout.addWidget(x)
    layout.addStretch(1)
    return w


class MainWindow(QMainWindow):
    def __init__(self, state: StudioState | None = None, controller: Controller | None = None,
                 settings: QSettings | None = None) -> None:
        super().__init__()
        self.setWindowTitle("Surrogate Studio")
        self.state = state or StudioState()
        self.controller = controller or Controller(self.state)
        self.settings = settings or QSettings("SurrogateStudio", "studio")
        self.saved_count = 0

        self.photo = PhotoView(self.state)
        self.photo.set_overlay(str(self.settings.value("overlay", "contours")))
        self.overlay_chooser = OverlayChooser(self.photo.overlay)
        self.overlay_chooser.changed.connect(self.set_overlay)
        self.attributes = AttributesPanel(self.state)
        self.sliders = SliderPanel(self.state)
        self.surrogate = SurrogateView(self.state)
        self.surrogate3d = Surrogate3DView(self.state)
        self.expression = ExpressionPanel(self.state.compared)
        self.identity = IdentityPanel(self.state.compared)
        self.context_action = QAction("In &context", self)
        self.context_action.setCheckable(True)
        self.context_action.setShortcut(QKeySequence("C"))
        self.context_action.setToolTip("Show the photo with the surrogate faces in place of "
                                       "the originals (C); the sliders edit the chosen face")
        self.context_action.toggled.connect(self.state.set_context_shown)
        self.state.context_view_changed.connect(self._on_context_view)
        self.photo_bar = PhotoBar(self.state, self.context_action)

        left = QWidget()
        lay = QVBoxLayout(left)
        lay.setContentsMargins(4, 4, 4, 4)
        lay.addWidget(self.photo_bar)
        lay.addWidget(self.photo, 1)
        lay.addWidget(self.overlay_chooser)
        lay.addWidget(self.attributes)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(left)
        self.splitter.addWidget(_column(self.surrogate, self.surrogate3d, self.sliders))
        self.splitter.addWidget(_column(self.expression, self.identity))
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setSizes([560, 460, 560])
        self.setCentralWidget(self.splitter)

        self.photo.face_clicked.connect(self.state.set_face)
        self.sliders.match_requested.connect(self.controller.match_original)
        self.sliders.new_identity_requested.connect(self.controller.new_identity)
        self.state.message.connect(self.show_message)
        self.state.busy_changed.connect(self._busy)
        self.state.timings_changed.connect(self._update_status)
        self.state.surrogate_changed.connect(self._update_save)
        self.state.context_changed.connect(self._update_save)
        self.state.image_changed.connect(self._on_image_changed)

        self.status = QLabel("Starting ...")
        self.statusBar().addWidget(self.status, 1)
        self.device_label = QLabel("")
        self.statusBar().addPermanentWidget(self.device_label)
        self.last_message = ("info", "")
        build_menus(self)
        self.setAcceptDrops(True)
        self.resize(1500, 900)
        geometry = self.settings.value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        splitter_state = self.settings.value("splitter")
        if splitter_state is not None:
            self.splitter.restoreState(splitter_state)

    # -- opening ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        start = str(self.settings.value("last_folder", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open a face photo", start, IMAGE_FILTER)
        if path:
            self.open_path(path)

    def open_path(self, path: str | Path) -> None:
        self.status.setText(f"Analysing {Path(path).name} …")
        self.controller.open_path(path)

    def open_demo(self) -> None:
        from skimage import data

        self.controller.open_array(data.astronaut(), "demo: astronaut (public domain)")

    def _on_image_changed(self) -> None:
        path = self.state.path
        if path and Path(path).is_file():
            self.settings.setValue("last_folder", str(Path(path).parent))
            self.recent.add(path)
        self.setWindowTitle(f"Surrogate Studio – {Path(path).name}" if path else
                            "Surrogate Studio")

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = [u.toLocalFile() for u in event.mimeData().urls() if u.isLocalFile()]
        if urls:
            self.open_path(urls[0])
            event.acceptProposedAction()

    # -- saving ----------------------------------------------------------------------
    def _saves_context(self) -> bool:
        return self.state.context_shown and self.state.context is not None

    def _update_save(self) -> None:
        context = self._saves_context()
        self.save_action.setText("&Save in-context photo as PNG…" if context
                                 else "&Save surrogate as PNG…")
        self.save_action.setEnabled(context or self.state.surrogate is not None)

    def _on_context_view(self) -> None:
        if self.context_action.isChecked() != self.state.context_shown:
            self.context_action.setChecked(self.state.context_shown)
        self._update_save()

    def save_surrogate(self, path: str | None = None) -> Path | None:
        """PNG of the surrogate only, or, in the in-context view, of the photo with the
        surrogate faces at the photo's own size: a new image, no metadata, a neutral file
        name; never over the original."""
        from studio.core.surrogates.making import png_bytes, save_png

        context = self.state.context if self._saves_context() else None
        result = self.state.surrogate
        if context is None and result is None:
            return None
        if not path:
            self.saved_count += 1
            folder = str(self.settings.value("save_folder", str(Path.home())))
            stem = "in_context" if context is not None else "surrogate"
            suggestion = str(Path(folder) / f"{stem}_{self.saved_count:04d}.png")
            path, _ = QFileDialog.getSaveFileName(self, "Save surrogate", suggestion,
                                                  "PNG image (*.png)")
            if not path:
                return None
        target = Path(path).with_suffix(".png")
        if self.state.path and target.resolve() == Path(self.state.path).resolve():
            self.show_message("error", f"Not saved: {target.name} is the original photo. "
                                       "Choose another name.")
            return None
        try:
            if context is not None:
                target.write_bytes(png_bytes(context.result.image, size=None))
                out = target
            else:
                out = save_png(result.image, target)
        except OSError as exc:
            name = Path(path).with_suffix(".png").name
            self.show_message("error", f"Could not save {name}: {exc.strerror or exc}")
            return None
        self.settings.setValue("save_folder", str(out.parent))
        self.show_message("info", f"Saved {out.name}")
        return out

    def open_workspace(self, path: str | None = None):
        """A curation window on a workspace file, sharing this window's models."""
        from studio.core.workspace.store import Workspace, WorkspaceError
        from studio.ui.curation import CurationWindow

        if not path:
            path, _ = QFileDialog.getOpenFileName(self, "Open a workspace", str(Path.home()),
                                                  "Studio workspace (*.studio)")
            if not path:
                return None
        try:
            workspace = Workspace(path)
        except WorkspaceError as exc:
            first = str(exc).splitlines()[0]  # the whole text is in the box
            self.show_message("error", first if len(first) <= 120 else first[:119] + "…")
            self._show_error("Cannot open the workspace", str(exc))
            return None
        window = CurationWindow(workspace, engine_provider=lambda: self.controller.engine)
        self._curation = window  # keep it alive
        window.show()
        return window

    def _show_error(self, title: str, text: str) -> QMessageBox:
        """A window-modal message whose text can be selected and copied (a damaged
        workspace's message holds the shell commands that recover it); not blocking."""
        box = QMessageBox(QMessageBox.Icon.Critical, title, text, QMessageBox.StandardButton.Ok,
                          self)
        box.setTextFormat(Qt.TextFormat.PlainText)
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                    | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        label = box.findChild(QLabel, "qt_msgbox_label")  # wide: the commands unbroken
        if label is not None:  # (a style sheet would reset the interaction flags)
            label.setMinimumWidth(760)
        box.finished.connect(box.deleteLater)
        self.error_box = box
        box.open()
        return box

    def open_crowd_report(self):
        from studio.ui.crowd_view import CrowdReportWindow

        window = CrowdReportWindow()
        self._crowd = window  # keep it alive
        window.show()
        return window

    def open_evaluation(self):
        from studio.ui.evaluation_view import EvaluationWindow

        window = EvaluationWindow(engine_provider=lambda: self.controller.engine)
        self._evaluation = window  # keep it alive
        window.show()
        return window

    def save_walk(self, path: str | None = None) -> None:
        """Filmstrip PNG and GIF from identity A to B at the current sliders (a worker job)."""
        engine = self.controller.engine
        if engine is None or not engine.can_generate:
            self.show_message("error", "The generator is still loading.")
            return
        if not path:
            folder = str(self.settings.value("save_folder", str(Path.home())))
            path, _ = QFileDialog.getSaveFileName(self, "Save latent walk",
                                                  str(Path(folder) / "walk.png"),
                                                  "PNG filmstrip (*.png)")
            if not path:
                return
        out = Path(path).with_suffix(".png")
        state = self.state
        targets, a, b, mode = state.targets, state.seed_a, state.seed_b, state.mode

        def job() -> Path:
            from PIL import Image

            from studio.core.generator import interpolation as walk

            frames = walk.between_identities(engine.generator, targets, a, b, 9, mode)
            Image.fromarray(walk.filmstrip(frames)).save(out)
            return walk.save_animation(frames, out.with_suffix(".gif"))

        run_in_thread(self, job, on_done=lambda gif: self.show_message(
            "info", f"Saved {out.name} and {gif.name}"), on_failed=lambda m: self.show_message(
            "error", f"Could not save the walk: {m}"))

    # -- feedback --------------------------------------------------------------------
    def set_overlay(self, name: str) -> None:
        self.photo.set_overlay(name)
        self.overlay_chooser.set_current(name)
        self.settings.setValue("overlay", name)

    def show_message(self, level: str, text: str) -> None:
        self.last_message = (level, text)
        self.status.setText(text)
        style = "color:#c62828; font-weight:bold" if level == "error" else ""
        if self.status.styleSheet() != style:  # restyling re-polishes: only on a change
            self.status.setStyleSheet(style)

    def _busy(self, what: str, busy: bool) -> None:
        if busy and what == "analysis":
            self.status.setText("Analysing …")
        if what == "models" and not busy and self.controller.engine is not None:
            self.device_label.setText(f"{self.controller.engine.device_name} · "
                                      f"{self.controller.engine.model_name}")

    def _update_status(self) -> None:
        engine = self.controller.engine
        if engine is None or not engine.can_generate:
            return  # the device and model are named once the generator is in
        parts = [f"{k} {v:.0f} ms" for k, v in self.state.timings.items()]
        self.device_label.setText(f"{engine.device_name} · {engine.model_name} · "
                                  + ", ".join(parts))

    def closeEvent(self, event) -> None:
        self.controller.stop()
        self.settings.setValue("geometry", self.saveGeometry())
        self.settings.setValue("splitter", self.splitter.saveState())
        super().closeEvent(event)
