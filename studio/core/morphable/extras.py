"""What the in-context surrogate needs beyond the morphable model itself, built from the
same training faces (``studio build-morphable --extras``) and kept beside it.

* A **gender axis** in identity shape and texture space: the direction from the faces the
  studio reads as female to those it reads as male (the P(male) of its own classifier),
  and where each group sits along it. A new identity is set along it from the requested
  P(male); without it the 3D surrogate came out at chance (51.6% agreement in the
  evaluation; with it, 40 of 40 held-out UTKFace faces kept their gender decision).
* A **smile axis** in texture space (``SmileAxis``): a new texture is set along it from
  the joy the face is drawn with, so that its creases and shading agree with its smile.
* A **skin detail map**: how strongly fine detail (pores, lines) varies at each texel,
  the root mean square of the textures' high-pass over thousands of faces. It is a
  statistic of many people, nobody's skin; synthetic detail is drawn with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.assets import MODELS_DIR, read_tensors, write_tensors
from studio.core.errors import ModelFileError

EXTRAS_FILE = MODELS_DIR / "morphable" / "face_3dmm_extras.safetensors"
#: The high-pass that defines fine detail: texture minus its Gaussian blur (texels).
DETAIL_SIGMA = 1.5
#: A new face is set along the gender axis this many times as far from the middle as the
#: groups' means: the photo's kept hair and outline pull the gender classifier towards
#: the original, and at the means a face asked to be female read as male in 11 of 20
#: held-out cases (3 of 20 at twice the distance; a face asked to be male: 1 and 0).
GENDER_EMPHASIS = 2.0


def _group_axis(coef: np.ndarray, member: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
    """The unit direction from the faces outside a group to those in it, and where each
    sits along it on average: (outside, inside)."""
    d = coef[member].mean(0) - coef[~member].mean(0)
    d = d / max(float(np.linalg.norm(d)), 1e-9)
    along = coef @ d
    return d, (float(along[~member].mean()), float(along[member].mean()))


def _move(coef: np.ndarray, d: np.ndarray, pos: tuple[float, float], p: float,
          emphasis: float = 1.0) -> np.ndarray:
    """``coef`` moved along ``d`` to where a face of score ``p`` (0: the first group, 1: the
    second) sits, ``emphasis`` times as far from the middle; every other direction kept."""
    mid = (pos[0] + pos[1]) / 2
    target = mid + emphasis * (pos[0] + p * (pos[1] - pos[0]) - mid)
    return coef + (target - float(coef @ d)) * d


@dataclass(frozen=True)
class GenderAxis:
    """Unit directions in shape and texture coefficient space, and where the faces read
    as female (P(male) < 0.5) and as male sit along each, on average."""

    shape_direction: np.ndarray  # (K,)
    texture_direction: np.ndarray  # (Kt,)
    shape_positions: tuple[float, float]  # (female, male)
    texture_positions: tuple[float, float]

    @classmethod
    def fit(cls, shape: np.ndarray, texture: np.ndarray, p_male: np.ndarray) -> GenderAxis:
        """From coefficients (n, K) and (n, Kt) of faces and their P(male) (n,)."""
        male = np.asarray(p_male) >= 0.5
        if male.all() or not male.any():
            raise ValueError("a gender axis needs faces read as male and as female")
        sd, sp = _group_axis(np.asarray(shape, np.float64), male)
        td, tp = _group_axis(np.asarray(texture, np.float64), male)
        return cls(sd, td, sp, tp)

    def apply(self, shape: np.ndarray, texture: np.ndarray, p_male: float,
              emphasis: float = GENDER_EMPHASIS) -> tuple[np.ndarray, np.ndarray]:
        """The coefficients moved along the axis to where a face of this P(male) sits,
        ``emphasis`` times as far from the middle as the groups' means; every other
        direction is left as it was."""
        p = float(np.clip(p_male, 0.0, 1.0))
        return (_move(np.asarray(shape, np.float64), self.shape_direction,
                      self.shape_positions, p, emphasis),
                _move(np.asarray(texture, np.float64), self.texture_direction,
                      self.texture_positions, p, emphasis))


@dataclass(frozen=True)
class SmileAxis:
    """A unit direction in texture space from the faces the studio reads as not smiling
    (joy < 0.5) to those it reads as smiling, and where each group sits along it. A
    texture projected from a photo carries its expression's look (creases, cheeks, the
    shading of the lips); a new identity's drawn texture carries a random amount of it,
    which the independent 7-class judge read as another expression (issue 27). The new
    texture is set along it from the joy the face is drawn with: one label, nobody's
    texture."""

    direction: np.ndarray  # (Kt,)
    positions: tuple[float, float]  # (not smiling, smiling)

    @classmethod
    def fit(cls, texture: np.ndarray, joy: np.ndarray) -> SmileAxis:
        smiling = np.asarray(joy) >= 0.5
        if smiling.all() or not smiling.any():
            raise ValueError("a smile axis needs faces read as smiling and as not")
        return cls(*_group_axis(np.asarray(texture, np.float64), smiling))

    def apply(self, texture: np.ndarray, joy: float) -> np.ndarray:
        """The texture coefficients moved to where a face of this joy sits on average."""
        return _move(np.asarray(texture, np.float64), self.direction, self.positions,
                     float(np.clip(joy, 0.0, 1.0)))


@dataclass(frozen=True)
class ModelExtras:
    gender: GenderAxis
    detail: np.ndarray  # (T, T) RMS of the high-pass luminance, [0, 1] units
    info: dict
    smile: SmileAxis | None = None  # None: a file built before it (issue 27)

    def save(self, path: Path = EXTRAS_FILE) -> None:
        g = self.gender
        tensors = {
            "gender_shape_direction": g.shape_direction.astype(np.float32),
            "gender_texture_direction": g.texture_direction.astype(np.float32),
            "gender_shape_positions": np.asarray(g.shape_positions, np.float32),
            "gender_texture_positions": np.asarray(g.texture_positions, np.float32),
            "detail": self.detail.astype(np.float16),
        }
        if self.smile is not None:
            tensors["smile_texture_direction"] = self.smile.direction.astype(np.float32)
            tensors["smile_texture_positions"] = np.asarray(self.smile.positions, np.float32)
        write_tensors(path, tensors, self.info)

    @classmethod
    def load(cls, path: Path | str | None = None) -> ModelExtras:
        path = Path(path) if path else EXTRAS_FILE
        if not path.is_file():
            raise ModelFileError(f"{path.name} is missing from {path.parent}; restore it "
                                 "with `git checkout models/` or rebuild it with "
                                 "`studio build-morphable --extras`.")
        try:
            t, info = read_tensors(path)
            axis = GenderAxis(t["gender_shape_direction"].astype(np.float64),
                              t["gender_texture_direction"].astype(np.float64),
                              tuple(float(v) for v in t["gender_shape_positions"]),
                              tuple(float(v) for v in t["gender_texture_positions"]))
            smile = (SmileAxis(t["smile_texture_direction"].astype(np.float64),
                               tuple(float(v) for v in t["smile_texture_positions"]))
                     if "smile_texture_direction" in t else None)
            return cls(axis, t["detail"].astype(np.float32), info, smile)
        except (KeyError, OSError, ValueError) as exc:
            raise ModelFileError(f"{path} cannot be read ({exc}).") from exc
