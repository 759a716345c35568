"""The five attributes the generator is conditioned on, and their [0, 1] normalisation."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

#: Angle ranges (degrees) mapped linearly onto [0, 1], as the thesis normalised its labels.
#: They cover GENKI-4K's labelled range (yaw +-43, pitch -27..37, roll +-20) with margin.
ANGLE_RANGES: dict[str, tuple[float, float]] = {
    "yaw": (-45.0, 45.0),
    "pitch": (-45.0, 45.0),
    "roll": (-45.0, 45.0),
}
NAMES = ("joy", "p_male", "yaw", "pitch", "roll")


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

    def normalized(self) -> np.ndarray:
        """(joy, p_male, yaw, pitch, roll) in [0, 1], the generator's label vector."""
        out = [self.joy, self.p_male]
        for name in ("yaw", "pitch", "roll"):
            lo, hi = ANGLE_RANGES[name]
            out.append((getattr(self, name) - lo) / (hi - lo))
        return np.clip(np.array(out, dtype=np.float32), 0.0, 1.0)

    @classmethod
    def from_normalized(cls, y: np.ndarray) -> Attributes:
        y = np.asarray(y, dtype=np.float64)
        angles = []
        for i, name in enumerate(("yaw", "pitch", "roll")):
            lo, hi = ANGLE_RANGES[name]
            angles.append(lo + float(y[2 + i]) * (hi - lo))
        return cls(float(y[0]), float(y[1]), *angles)

    def mirrored(self) -> Attributes:
        """The attributes of the horizontally flipped face: yaw and roll change sign."""
        return Attributes(self.joy, self.p_male, -self.yaw, self.pitch, -self.roll)

    def to_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in asdict(self).items()}
