"""The 3D morphable-model surrogate: drag to orbit, wheel to zoom, reset; three looks."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from studio.core.surrogates.registry import NEEDS_RENDERER
from studio.ui.images import to_pixmap
from studio.ui.state import StudioState

IDENTITIES = [("seed", "new identity (the GAN's seed)"), ("mean", "mean face"),
              ("reconstruction", "reconstruction of the original (fit check)")]
MODES = [("textured", "textured"), ("shaded", "shaded"), ("wireframe", "wireframe")]
BACKGROUNDS = [("plain", "plain background"), ("blurred", "blurred original")]
DEGREES_PER_PIXEL = 0.5
MAX_ELEVATION = 80.0


class OrbitLabel(QLabel):
    """Shows the render; turns mouse drags and wheel turns into a new camera view."""

    view_requested = Signal(float, float, float)  # azimuth, elevation, zoom

    def __init__(self, size: int) -> None:
        super().__init__("3D surrogate")
        self.setFixedSize(size, size)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setStyleSheet("background:#2a2b2f; color:#888; border-radius:4px")
        self.setCursor(Qt.CursorShape.OpenHandCursor)
        self.setToolTip("Drag to orbit, wheel to zoom, double-click to reset the view")
        self.view = (0.0, 0.0, 1.0)
        self._press: tuple[QPointF, tuple[float, float, float]] | None = None

    def mousePressEvent(self, event) -> None:
        self._press = (event.position(), self.view)
        self.setCursor(Qt.CursorShape.ClosedHandCursor)

    def mouseMoveEvent(self, event) -> None:
        if self._press is None:
            return
        start, (az, el, zoom) = self._press
        d = event.position() - start
        el = max(-MAX_ELEVATION, min(MAX_ELEVATION, el + d.y() * DEGREES_PER_PIXEL))
        self.view_requested.emit(az + d.x() * DEGREES_PER_PIXEL, el, zoom)

    def mouseReleaseEvent(self, event) -> None:
        self._press = None
        self.setCursor(Qt.CursorShape.OpenHandCursor)

    def mouseDoubleClickEvent(self, event) -> None:
        self.view_requested.emit(0.0, 0.0, 1.0)

    def wheelEvent(self, event) -> None:
        az, el, zoom = self.view
        steps = event.angleDelta().y() / 120
        self.view_requested.emit(az, el, max(0.5, min(4.0, zoom * 1.15 ** steps)))


def _combo(items: list[tuple[str, str]], current: str) -> QComboBox:
    box = QComboBox()
    for key, text in items:
        box.addItem(text, key)
    box.setCurrentIndex([k for k, _ in items].index(current))
    return box


class Surrogate3DView(QGroupBox):
    """Same expression and pose as the original, another identity, from a morphable model."""

    def __init__(self, state: StudioState, size: int = 224) -> None:
        super().__init__("3D surrogate (morphable model)")
        self.state = state
        layout = QHBoxLayout(self)
        self.image = OrbitLabel(size)
        self.image.setObjectName("surrogate3d_image")
        layout.addWidget(self.image)
        side = QVBoxLayout()
        self.identity = _combo(IDENTITIES, state.identity3d)
        self.mode = _combo(MODES, state.mode3d)
        self.background = _combo(BACKGROUNDS, state.background3d)
        self.reset = QPushButton("Reset view")
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        for w in (self.identity, self.mode, self.background, self.reset, self.caption):
            side.addWidget(w)
        side.addStretch(1)
        layout.addLayout(side, 1)
        self.generation = 0  # renders shown (tests read it)

        self.identity.currentIndexChanged.connect(
            lambda: state.set_options3d(identity3d=self.identity.currentData()))
        self.mode.currentIndexChanged.connect(
            lambda: state.set_options3d(mode3d=self.mode.currentData()))
        self.background.currentIndexChanged.connect(
            lambda: state.set_options3d(background3d=self.background.currentData()))
        self.reset.clicked.connect(lambda: state.set_options3d(view3d=(0.0, 0.0, 1.0)))
        self.image.view_requested.connect(
            lambda az, el, zoom: state.set_options3d(view3d=(az, el, zoom)))
        state.options3d_changed.connect(lambda: setattr(self.image, "view", state.view3d))
        state.surrogate3d_changed.connect(self.refresh)
        state.image_changed.connect(self.refresh)
        state.busy_changed.connect(self._on_busy)

    def _on_busy(self, what: str, busy: bool) -> None:
        if what in ("models", NEEDS_RENDERER) and self.state.surrogate3d is None:
            if busy:
                self.image.setText("loading the 3D model …")
            else:
                self.refresh()

    def refresh(self) -> None:
        result = self.state.surrogate3d
        if result is None:
            self.image.clear()
            self.image.setText("3D surrogate" if self.state.face is not None else "no face")
            self.caption.setText("")
            return
        self.image.setPixmap(to_pixmap(result.image, self.image.width()))
        if result.is_reconstruction:
            self.caption.setText("<b style='color:#c62828'>Reconstruction of the original: "
                                 "for checking the fit only, NOT anonymous.</b>")
        else:
            self.caption.setText(f"fit error {100 * result.fit_nme:.1f}% of eye distance · "
                                 f"render {result.render_ms:.0f} ms")
        self.generation += 1
