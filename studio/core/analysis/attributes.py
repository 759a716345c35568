"""The five attributes a surrogate keeps, declared once, and their [0, 1] normalisation.

``SPECS`` is the one table of what each attribute is: its label, unit, range, slider step
and help. The window's sliders and attribute panel, the command line's flags,
interpolation and the generator's label normalisation all read it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class AttributeSpec:
    """One attribute: ``low``..``high`` maps linearly onto the generator's [0, 1] label."""

    name: str  # the field of ``Attributes``
    label: str
    unit: str  # "" for a score in [0, 1], "°" for an angle
    low: float
    high: float
    step: float  # the resolution of a slider and of the numbers shown
    default: float
    help: str
    flag: str  # the command-line option, without its dashes

    @property
    def is_angle(self) -> bool:
        return self.unit == "°"

    @property
    def ticks_per_unit(self) -> int:
        """Integer slider positions per unit (a QSlider holds integers)."""
        return round(1 / self.step)

    def normalize(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def denormalize(self, y: float) -> float:
        return self.low + y * (self.high - self.low)

    def format(self, value: float) -> str:
        return f"{value:+.1f}°" if self.is_angle else f"{value:.2f}"


#: The angle ranges cover GENKI-4K's labelled range (yaw +-43, pitch -27..37, roll +-20)
#: with margin; they map onto [0, 1] as the thesis normalised its labels.
SPECS: tuple[AttributeSpec, ...] = (
    AttributeSpec("joy", "Joy", "", 0.0, 1.0, 0.01, 0.5, "0 (neutral) .. 1 (smiling)", "joy"),
    AttributeSpec("p_male", "P(male)", "", 0.0, 1.0, 0.01, 0.5, "P(male), 0 .. 1", "male"),
    AttributeSpec("yaw", "Yaw", "°", -45.0, 45.0, 1.0, 0.0,
                  "degrees, > 0: nose to image right", "yaw"),
    AttributeSpec("pitch", "Pitch", "°", -45.0, 45.0, 1.0, 0.0, "degrees, > 0: chin up", "pitch"),
    AttributeSpec("roll", "Roll", "°", -45.0, 45.0, 1.0, 0.0, "degrees, > 0: clockwise", "roll"),
)
SPEC = {s.name: s for s in SPECS}
NAMES = tuple(s.name for s in SPECS)
ANGLES = tuple(s.name for s in SPECS if s.is_angle)


def same_gender(p_male: float | None, other: float | None) -> bool:
    """Whether two P(male) readings make the same gender decision (>= 0.5). A reading
    that could not be made (None or NaN) passes: an unreadable face is not a changed one."""
    if p_male is None or other is None or not (math.isfinite(p_male) and math.isfinite(other)):
        return True
    return (p_male >= 0.5) == (other >= 0.5)


@dataclass(frozen=True)
class Attributes:
    """Joy and P(male) in [0, 1]; yaw, pitch and roll in degrees.

    Conventions (GENKI-4K's, checked by the tests): yaw > 0 when the person turns to
    their own left (nose towards the right of the image); pitch > 0 when the chin
    goes up; roll > 0 when the face is rotated clockwise in the image.
    """

    joy: float
    p_male: float
    yaw: float
    pitch: float
    roll: float

    @property
    def smiling(self) -> bool:
        return self.joy >= 0.5

    @classmethod
    def defaults(cls) -> Attributes:
        return cls(*(s.default for s in SPECS))

    def normalized(self) -> np.ndarray:
        """(joy, p_male, yaw, pitch, roll) in [0, 1], the generator's label vector."""
        import numpy as np  # lazily: `studio --help` reads the specs
        out = [s.normalize(getattr(self, s.name)) for s in SPECS]
        return np.clip(np.array(out, dtype=np.float32), 0.0, 1.0)

    @classmethod
    def from_normalized(cls, y: np.ndarray) -> Attributes:
        import numpy as np  # lazily: `studio --help` reads the specs
        y = np.asarray(y, dtype=np.float64)
        return cls(*(s.denormalize(float(v)) for s, v in zip(SPECS, y, strict=True)))

    def mirrored(self) -> Attributes:
        """The attributes of the horizontally flipped face: yaw and roll change sign."""
        return Attributes(self.joy, self.p_male, -self.yaw, self.pitch, -self.roll)

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}
