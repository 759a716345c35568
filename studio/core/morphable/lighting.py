"""The photo's own lighting, as second-order spherical harmonics (9 per channel, 27 numbers).

Why: a new face pasted into a photo reads as real only when the light on it is the
photo's. A Lambertian surface under distant light is, to within a few per cent, albedo x
a quadratic function of its normal (Ramamoorthi and Hanrahan 2001), so nine coefficients
per colour channel, found by least squares from the fitted mesh's normals and the face's
pixels, carry the photo's light to the new face: shade its albedo with them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Band scale of the irradiance filter (Ramamoorthi and Hanrahan), per coefficient.
_BANDS = np.array([np.pi, *(2 * np.pi / 3,) * 3, *(np.pi / 4,) * 5])
#: The smallest share of a face's texels that must be seen to estimate its light.
MIN_TEXELS = 200


def sh_basis(normals: np.ndarray) -> np.ndarray:
    """(N, 9) real spherical harmonics up to order 2 of unit normals (N, 3), irradiance-
    filtered, so that ``sh_basis(n) @ coefficients`` is the shading."""
    x, y, z = (np.asarray(normals, np.float64)[..., k] for k in range(3))
    c = np.stack([np.full_like(x, 0.282095), 0.488603 * y, 0.488603 * z, 0.488603 * x,
                  1.092548 * x * y, 1.092548 * y * z, 0.315392 * (3 * z * z - 1),
                  1.092548 * x * z, 0.546274 * (x * x - y * y)], axis=-1)
    return c * _BANDS / np.pi


@dataclass(frozen=True)
class Lighting:
    """Nine coefficients per RGB channel; shading = sh_basis(n) @ coefficients (9, 3)."""

    coefficients: np.ndarray  # (9, 3)
    residual: float  # RMS of the fit over the texels it used, in [0, 1] colour units

    @classmethod
    def ambient(cls, level: float = 1.0) -> Lighting:
        """Even light from all sides: shading ``level`` everywhere."""
        coef = np.zeros((9, 3))
        coef[0] = level / sh_basis(np.array([0.0, 0.0, 1.0]))[0]
        return cls(coef, 0.0)

    def shade(self, normals: np.ndarray) -> np.ndarray:
        """(..., 3) per-channel shading for unit normals (..., 3), never negative."""
        return np.clip(sh_basis(normals) @ self.coefficients, 0.0, None)

    def grey(self) -> Lighting:
        """The same light without its colour: each channel gets the channels' mean, so a
        face keeps its own skin tone (the 'model' skin choice)."""
        mean = self.coefficients.mean(axis=1, keepdims=True)
        return Lighting(np.repeat(mean, 3, axis=1), self.residual)

    @property
    def tint(self) -> np.ndarray:
        """(3,) the light's colour on a face turned to the camera, relative to its mean."""
        front = self.shade(np.array([0.0, 0.0, 1.0]))
        return front / max(float(front.mean()), 1e-6)


def estimate(normals: np.ndarray, observed: np.ndarray, albedo: np.ndarray,
             weight: np.ndarray, ridge: float = 1e-3) -> Lighting:
    """Least-squares lighting with ``observed ≈ albedo · (sh_basis(normals) @ L)``.

    normals (N, 3) unit; observed and albedo (N, 3) in [0, 1]; weight (N,) in [0, 1]
    (0 where the texel is hidden or not skin). A small ridge towards even light keeps a
    face seen from one side from inventing light on the other. With too few texels the
    light is even, at the face's mean brightness.
    """
    w = np.asarray(weight, np.float64)
    use = w > 0
    basis = sh_basis(normals[use])
    sw = np.sqrt(w[use])[:, None]
    if use.sum() < MIN_TEXELS:
        level = float((observed[use].mean() / max(albedo[use].mean(), 1e-6))
                      if use.any() else 1.0)
        return Lighting.ambient(level)
    coef = np.zeros((9, 3))
    resid = []
    prior = Lighting.ambient(1.0).coefficients[:, 0]
    # Second-order terms are held back ten times harder: a face is a small patch of the
    # sphere, and they are what overshoots into a glossy nose.
    penalty = np.diag([1.0, 1, 1, 1, 10, 10, 10, 10, 10])
    for c in range(3):
        a = basis * albedo[use, c:c + 1] * sw
        b = observed[use, c] * sw[:, 0]
        lam = ridge * len(b)
        coef[:, c] = np.linalg.solve(a.T @ a + lam * penalty, a.T @ b + lam * penalty @ prior)
        resid.append(float(np.sqrt(np.mean((a @ coef[:, c] - b) ** 2))))
    return Lighting(coef, float(np.mean(resid)))
