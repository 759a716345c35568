"""The side panels: attribute estimates, sliders and identity controls, the surrogate."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.analysis.attributes import SPECS, AttributeSpec
from studio.core.analysis.framing import original_crop
from studio.ui.images import to_pixmap
from studio.ui.state import StudioState


def add_row(grid: QGridLayout, row: int, label: str, widget: QWidget) -> QLabel:
    """label | widget | value: the layout both attribute panels share."""
    value = QLabel("–")
    value.setMinimumWidth(56)
    value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    grid.addWidget(QLabel(label), row, 0)
    grid.addWidget(widget, row, 1)
    grid.addWidget(value, row, 2)
    return value


def ticks(spec: AttributeSpec, value: float) -> int:
    """A slider's integer position for ``value`` (a QSlider holds integers)."""
    return round(value * spec.ticks_per_unit)


class AttributesPanel(QGroupBox):
    """The chosen face's estimates, as numbers and bars."""

    def __init__(self, state: StudioState) -> None:
        super().__init__("Original: attributes")
        self.state = state
        grid = QGridLayout(self)
        self.bars: dict[str, QProgressBar] = {}
        self.values: dict[str, QLabel] = {}
        for row, spec in enumerate(SPECS):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            bar.setTextVisible(False)
            bar.setFixedHeight(12)
            self.bars[spec.name] = bar
            self.values[spec.name] = add_row(grid, row, spec.label, bar)
        self.smile = QLabel("")
        grid.addWidget(self.smile, len(SPECS), 0, 1, 3)
        state.face_changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        face = self.state.face
        for spec in SPECS:
            name = spec.name
            if face is None:
                self.bars[name].setValue(0)
                self.values[name].setText("–")
                continue
            v = float(getattr(face.attributes, name))
            self.bars[name].setValue(int(1000 * min(max(spec.normalize(v), 0), 1)))
            self.values[name].setText(spec.format(v))
        if face is None:
            self.smile.setText("No face chosen")
        else:
            self.smile.setText("Smiling" if face.attributes.smiling else "Not smiling")


class SliderPanel(QGroupBox):
    """Sliders for the five attributes, and the identity controls."""

    match_requested = Signal()
    new_identity_requested = Signal()

    def __init__(self, state: StudioState) -> None:
        super().__init__("Surrogate: requested attributes")
        self.state = state
        layout = QVBoxLayout(self)
        grid = QGridLayout()
        self.sliders: dict[str, QSlider] = {}
        self.labels: dict[str, QLabel] = {}
        for row, spec in enumerate(SPECS):
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(ticks(spec, spec.low), ticks(spec, spec.high))
            s.setTracking(True)  # redraw while the slider moves, not only on release
            s.valueChanged.connect(lambda v, sp=spec: self._moved(sp, v / sp.ticks_per_unit))
            s.setObjectName(f"slider_{spec.name}")
            self.sliders[spec.name] = s
            self.labels[spec.name] = add_row(grid, row, spec.label, s)
        layout.addLayout(grid)
        self.match = QPushButton("Match original")
        self.match.setToolTip("Put the sliders back to the chosen face's estimates (Ctrl+M)")
        self.match.clicked.connect(self.match_requested)
        layout.addWidget(self.match)

        ident = QGroupBox("Identity")
        g = QGridLayout(ident)
        self.seed_a = QSpinBox()
        self.seed_a.setRange(1, 99999)
        self.seed_b = QSpinBox()
        self.seed_b.setRange(1, 99999)
        self.new_id = QPushButton("New identity")
        self.new_id.setToolTip("Draw another identity (Ctrl+N)")
        self.lock = QCheckBox("Lock")
        self.lock.setToolTip("Keep this identity for every photo")
        self.mix = QSlider(Qt.Orientation.Horizontal)
        self.mix.setRange(0, 100)
        self.mix.setObjectName("slider_mix")
        self.mode = QComboBox()
        self.mode.addItems(["slerp", "linear"])
        g.addWidget(QLabel("Seed A"), 0, 0)
        g.addWidget(self.seed_a, 0, 1)
        g.addWidget(self.new_id, 0, 2)
        g.addWidget(self.lock, 0, 3)
        g.addWidget(QLabel("Seed B"), 1, 0)
        g.addWidget(self.seed_b, 1, 1)
        g.addWidget(QLabel("A → B"), 2, 0)
        g.addWidget(self.mix, 2, 1, 1, 2)
        g.addWidget(self.mode, 2, 3)
        layout.addWidget(ident)
        self.seed_a.valueChanged.connect(lambda v: state.set_identity(seed_a=v))
        self.seed_b.valueChanged.connect(lambda v: state.set_identity(seed_b=v))
        self.mix.valueChanged.connect(lambda v: state.set_identity(mix=v / 100))
        self.mode.currentTextChanged.connect(lambda m: state.set_identity(mode=m))
        self.lock.toggled.connect(lambda on: state.set_identity(locked=on))
        self.new_id.clicked.connect(self.new_identity_requested)
        state.targets_changed.connect(self.refresh)
        state.identity_changed.connect(self.refresh)
        self.refresh()

    def _moved(self, spec: AttributeSpec, value: float) -> None:
        self.labels[spec.name].setText(spec.format(value))
        self.state.set_targets(**{spec.name: value})

    def refresh(self) -> None:
        t = self.state.targets
        for spec in SPECS:
            v = float(getattr(t, spec.name))
            s = self.sliders[spec.name]
            s.blockSignals(True)
            s.setValue(ticks(spec, v))
            s.blockSignals(False)
            self.labels[spec.name].setText(spec.format(v))
        for widget, value in ((self.seed_a, self.state.seed_a), (self.seed_b, self.state.seed_b),
                              (self.mix, round(self.state.mix * 100))):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.lock.blockSignals(True)
        self.lock.setChecked(self.state.locked)
        self.lock.blockSignals(False)
        self.new_id.setEnabled(not self.state.locked)
        self.seed_a.setEnabled(not self.state.locked)


class SurrogateView(QGroupBox):
    """The original's face crop and the surrogate, in the same framing, upscaled smoothly."""

    def __init__(self, state: StudioState, size: int = 224) -> None:
        super().__init__("Original and surrogate (same framing)")
        self.state, self.size = state, size
        row = QHBoxLayout(self)
        self.original = QLabel("original")
        self.surrogate = QLabel("surrogate")
        for label in (self.original, self.surrogate):
            label.setFixedSize(size, size)
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setStyleSheet("background:#2a2b2f; color:#888; border-radius:4px")
            row.addWidget(label)
        self.surrogate.setObjectName("surrogate_image")
        self.generation = 0  # counts surrogates shown (tests read it)
        state.face_changed.connect(self.refresh_original)
        state.surrogate_changed.connect(self.refresh_surrogate)
        state.busy_changed.connect(self._on_busy)

    def _on_busy(self, what: str, busy: bool) -> None:
        if what == "models" and self.state.surrogate is None:
            self.surrogate.setText("loading the generator …" if busy else "surrogate")

    def refresh_original(self) -> None:
        face, image = self.state.face, self.state.image
        if face is None or image is None:
            self.original.clear()
            self.original.setText("no face")
            return
        crop = original_crop(image.rgb, face.landmarks, size=self.size)
        self.original.setPixmap(to_pixmap(crop))

    def refresh_surrogate(self) -> None:
        result = self.state.surrogate
        if result is None:
            self.surrogate.clear()
            self.surrogate.setText("surrogate")
            return
        self.surrogate.setPixmap(to_pixmap(result.image, self.size))
        self.generation += 1


class OverlayChooser(QWidget):
    changed = Signal(str)

    def __init__(self, current: str) -> None:
        super().__init__()
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("Landmarks:"))
        self.group = QButtonGroup(self)
        self.buttons: dict[str, QRadioButton] = {}
        for name in ("points", "contours", "mesh", "none"):
            b = QRadioButton(name)
            b.setChecked(name == current)
            b.toggled.connect(lambda on, n=name: on and self.changed.emit(n))
            self.group.addButton(b)
            self.buttons[name] = b
            row.addWidget(b)
        row.addStretch(1)

    def set_current(self, name: str) -> None:
        button = self.buttons.get(name)
        if button is not None and not button.isChecked():
            button.blockSignals(True)
            button.setChecked(True)
            button.blockSignals(False)
