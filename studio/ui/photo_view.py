"""The photo with its landmarks drawn over it; several faces are outlined and clickable.
The same view shows the photo with the surrogate faces in it (the in-context view), and
the bar above it switches between the two and says what is shown."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QWidget,
)

from studio.core.analysis.landmarks import connections
from studio.core.analysis.search_settings import UNFITTED_POLICIES
from studio.core.surrogates.compositing import MIN_FACE_PX, face_width
from studio.core.surrogates.registry import IN_CONTEXT
from studio.ui.images import to_pixmap
from studio.ui.state import StudioState

OVERLAYS = ("points", "contours", "mesh", "none")
CHOSEN = QColor("#35c46a")
OTHER = QColor("#f2b233")
UNREPLACED = QColor("#e0433a")  # found faces that will be blurred or masked instead


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
        self._context_pixmap = None  # made once per in-context photo
        self.shown = "none"  # what the view paints: "original", "in_context" or "none"
        state.image_changed.connect(self._new_image)
        state.face_changed.connect(self.redraw)
        state.context_changed.connect(self._new_context)
        state.context_view_changed.connect(self.redraw)

    def _new_image(self) -> None:
        """The new photo's pixmap, from the state's small display copy; it is drawn on
        face_changed, which always follows."""
        self._pixmap = None
        if self.state.display is not None:
            rgb, scale = self.state.display
            self._pixmap = (to_pixmap(rgb), scale)

    def _new_context(self) -> None:
        photo = self.state.context
        self._context_pixmap = None
        if photo is not None:
            rgb, scale = photo.display
            self._context_pixmap = (to_pixmap(rgb), scale)
        if self.state.context_shown:
            self.redraw()

    def shown_pixmap(self):
        """The pixmap painted now and its scale (display px per photo px), or None."""
        return self._context_pixmap if self.shown == "in_context" else self._pixmap

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
            self.shown = "none"
            scene.addText("Open a photo (Ctrl+O) or drop one here").setDefaultTextColor(
                QColor("#aaaaaa"))
            return
        # In context, the landmarks (the original's) are not drawn over the new faces.
        in_context = self.state.context_shown and self._context_pixmap is not None
        self.shown = "in_context" if in_context else "original"
        shown = self.shown_pixmap()
        if shown is not None:
            pixmap, scale = shown
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
            if (chosen or len(faces) == 1) and not in_context:
                self._draw_landmarks(face.landmarks, color, width)
            if face_width(face.landmarks) < MIN_FACE_PX:
                self._mark(face.box, f"face {i + 1}: too small to fit: it will be blurred, "
                                     "not replaced", "blur", width)
        unfitted = self.state.analysis.unfitted if self.state.analysis else ()
        for j, u in enumerate(unfitted):
            kind = "blur" if u.width < MIN_FACE_PX else UNFITTED_POLICIES[0]
            self._mark(u.box, f"face {len(faces) + j + 1}: found, but no landmarks could be "
                              f"fitted: it will be {kind}ed, not replaced", kind, width)
        self.fitInView(scene.sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def _mark(self, box: tuple[float, ...], tip: str, kind: str, width: float) -> None:
        """A face that will be blurred or masked rather than replaced: a dashed box and
        what will be done to it."""
        x0, y0, x1, y1 = box
        rect = self.scene().addRect(QRectF(x0, y0, x1 - x0, y1 - y0),
                                    QPen(UNREPLACED, 2 * width, Qt.PenStyle.DashLine))
        rect.setToolTip(tip)
        label = self.scene().addText(kind)
        label.setDefaultTextColor(UNREPLACED)
        label.setPos(x0, y1)
        label.setScale(width)

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


class PhotoBar(QWidget):
    """Above the photo: the in-context toggle and what the view shows, with the notes of
    the in-context photo (a limited pose edit, a face blurred instead), never silently."""

    def __init__(self, state: StudioState, toggle: QAction) -> None:
        super().__init__()
        self.state = state
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.toggle = QToolButton()
        self.toggle.setDefaultAction(toggle)
        self.toggle.setObjectName("context_toggle")
        self.toggle.setStyleSheet("QToolButton { padding: 3px 10px; } QToolButton:checked "
                                  "{ background:#35c46a; color:white; font-weight:bold; }")
        row.addWidget(self.toggle)
        self.caption = QLabel("")
        self.caption.setWordWrap(True)
        row.addWidget(self.caption, 1)
        self._busy = False
        for signal in (state.context_view_changed, state.context_changed, state.face_changed):
            signal.connect(self.refresh)
        state.busy_changed.connect(self._on_busy)
        self.refresh()

    def _on_busy(self, what: str, busy: bool) -> None:
        if what == IN_CONTEXT:  # its lane makes an in-context photo
            self._busy = busy
            self.refresh()

    def refresh(self) -> None:
        state, photo = self.state, self.state.context
        key = self.toggle.defaultAction().shortcut().toString()
        if not state.context_shown:
            text = (f"Original photo. <b>In context</b> ({key}) shows it with the surrogate "
                    "faces in place." if state.face is not None else "Original photo.")
        elif state.face is None:
            text = "No face to replace in this photo."
        elif photo is None:
            text = "Making the in-context photo …"
        else:
            result = photo.result
            n = result.replaced
            text = (f"<b>In context</b>: {n} face{'s' if n != 1 else ''} replaced "
                    f"(identity seed {photo.request.seed}), {photo.ms:.0f} ms"
                    + (" · updating …" if self._busy else ""))
            lines = photo.notes()
            if lines:
                text += "".join(f"<br><span style='color:#e08a00'>{line}</span>"
                                for line in lines)
        if self.caption.text() != text:
            self.caption.setText(text)
