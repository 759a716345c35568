"""The photo with its landmarks drawn over it; several faces are outlined and clickable."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from studio.core.analysis.landmarks import connections
from studio.ui.images import to_pixmap
from studio.ui.state import StudioState

OVERLAYS = ("points", "contours", "mesh", "none")
CHOSEN = QColor("#35c46a")
OTHER = QColor("#f2b233")


class PhotoView(QGraphicsView):
    face_clicked = Signal(int)

    def __init__(self, state: StudioState) -> None:
        super().__init__()
        self.state = state
        self.overlay = "contours"
        self.setScene(QGraphicsScene(self))
        self.setRenderHints(QPainter.RenderHint.Antialiasing
                            | QPainter.RenderHint.SmoothPixmapTransform)
        self.setBackgroundBrush(QColor("#1e1f22"))
        self.setMinimumSize(320, 260)
        self.setAcceptDrops(False)  # the main window takes drops
        self._links: dict[str, np.ndarray] = {}
        self._pixmap = None  # made once per photo, from the small display copy
        state.image_changed.connect(self._new_image)
        state.face_changed.connect(self.redraw)

    def _new_image(self) -> None:
        """The new photo's pixmap, from the state's small display copy; it is drawn on
        face_changed, which always follows."""
        self._pixmap = None
        if self.state.display is not None:
            rgb, scale = self.state.display
            self._pixmap = (to_pixmap(rgb), scale)

    def set_overlay(self, name: str) -> None:
        if name in OVERLAYS:
            self.overlay = name
            self.redraw()

    def _pairs(self, kind: str) -> np.ndarray:
        if kind not in self._links:
            self._links[kind] = connections(kind)
        return self._links[kind]

    def redraw(self) -> None:
        scene = self.scene()
        scene.clear()
        image = self.state.image
        if image is None:
            scene.addText("Open a photo (Ctrl+O) or drop one here").setDefaultTextColor(
                QColor("#aaaaaa"))
            return
        if self._pixmap is not None:
            pixmap, scale = self._pixmap
            item = scene.addPixmap(pixmap)
            item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
            item.setScale(1.0 / scale)  # scene units stay the photo's own pixels
        scene.setSceneRect(QRectF(0, 0, image.width, image.height))
        faces = self.state.analysis.faces if self.state.analysis else []
        width = max(1.0, max(image.width, image.height) / 500)
        for i, face in enumerate(faces):
            chosen = i == self.state.face_index
            color = CHOSEN if chosen else OTHER
            x0, y0, x1, y1 = face.box
            pad = 0.08 * (x1 - x0)
            box = scene.addRect(QRectF(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad),
                                QPen(color, 2 * width))
            box.setToolTip(f"face {i + 1}: click to work on it")
            if len(faces) > 1:
                label = scene.addText(str(i + 1))
                label.setDefaultTextColor(color)
                label.setPos(x0 - pad, y0 - pad - 22 * width)
                label.setScale(width)
            if chosen or len(faces) == 1:
                self._draw_landmarks(face.landmarks, color, width)
        self.fitInView(scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def _draw_landmarks(self, pts: np.ndarray, color: QColor, width: float) -> None:
        scene = self.scene()
        if self.overlay == "none":
            return
        if self.overlay == "points":
            path = QPainterPath()
            r = 0.9 * width
            for x, y, _ in pts:
                path.addEllipse(QPointF(float(x), float(y)), r, r)
            scene.addPath(path, QPen(Qt.PenStyle.NoPen), QBrush(color))
            return
        path = QPainterPath()
        for a, b in self._pairs(self.overlay):
            path.moveTo(float(pts[a, 0]), float(pts[a, 1]))
            path.lineTo(float(pts[b, 0]), float(pts[b, 1]))
        alpha = QColor(color)
        alpha.setAlpha(200 if self.overlay == "contours" else 110)
        scene.addPath(path, QPen(alpha, 0.8 * width))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.state.image is not None:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def mousePressEvent(self, event) -> None:
        analysis = self.state.analysis
        if analysis is not None and event.button() == Qt.MouseButton.LeftButton:
            p = self.mapToScene(event.position().toPoint())
            for i, face in enumerate(analysis.faces):
                x0, y0, x1, y1 = face.box
                pad = 0.08 * (x1 - x0)
                if x0 - pad <= p.x() <= x1 + pad and y0 - pad <= p.y() <= y1 + pad:
                    self.face_clicked.emit(i)
                    return
        super().mousePressEvent(event)

    def face_center_in_view(self, index: int):
        """Where face ``index`` is on screen (used by tests to click it)."""
        x0, y0, x1, y1 = self.state.analysis.faces[index].box
        return self.mapFromScene(QPointF((x0 + x1) / 2, (y0 + y1) / 2))
