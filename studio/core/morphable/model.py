"""The studio's 3D morphable face model: shape = mean + expression + identity, plus texture.

Topology and UV layout are MediaPipe's canonical face mesh (468 vertices). Model space is
the canonical mesh's: centimetre-like units, x right, y up, z towards the viewer. Image
space is the landmarker's: pixels, x right, y down, z away from the viewer; the two differ
by a flip of y and z (``to_model`` / ``to_image``).

Built from data by ``studio build-morphable`` (studio.core.morphable.build).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from studio.core.assets import MODELS_DIR, read_tensors, write_tensors
from studio.core.errors import ModelFileError

MORPHABLE_FILE = MODELS_DIR / "morphable" / "face_3dmm.safetensors"
N_MESH = 468
FLIP = np.array([1.0, -1.0, -1.0])
#: The blendshapes a smile moves (MediaPipe names); joy edits act on these.
SMILE_BLENDSHAPES = ("mouthSmileLeft", "mouthSmileRight")


def to_model(points: np.ndarray) -> np.ndarray:
    return np.asarray(points, np.float64)[..., :3] * FLIP


to_image = to_model  # the flip is its own inverse


def umeyama(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Similarity (s, R, t) minimising ||s R src + t - dst||² (Umeyama 1991)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(b.T @ a)
    d = np.ones(3)
    d[2] = np.sign(np.linalg.det(u @ vt))
    r = u @ np.diag(d) @ vt
    s = float((sig * d).sum() / (a ** 2).sum())
    return s, r, mu_d - s * r @ mu_s


def rotation_from_angles(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model-space rotation for the studio's angles (degrees): yaw > 0 turns the nose to the
    image's right, pitch > 0 lifts the chin, roll > 0 turns the face clockwise on screen."""
    y, p, r = np.radians([yaw, -pitch, -roll])
    ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return rz @ rx @ ry


def _opposite(sample: np.ndarray, original: np.ndarray, margin: float) -> np.ndarray:
    original = np.asarray(original, np.float64)
    norm = float(np.linalg.norm(original))
    if norm < 1e-6:
        return sample
    u = original / norm
    along = float(sample @ u)
    return sample + (min(along, -margin) - along) * u


@dataclass(frozen=True)
class Fit:
    """A face explained by the model: image ≈ to_image(scale · R · shape + t)."""

    scale: float
    rotation: np.ndarray  # (3, 3) model space
    translation: np.ndarray  # (3,)
    identity: np.ndarray  # (K,) in units of each component's standard deviation
    expression: np.ndarray  # (52,) blendshape-like weights
    rms_px: float  # landmark error of the fit, pixels
    nme: float  # the same over the outer-eye-corner distance
    texture: np.ndarray | None = None  # (Kt,) the photo's texture in the model's terms


@dataclass(frozen=True)
class MorphableModel:
    mean_shape: np.ndarray  # (468, 3) neutral mean
    expression_basis: np.ndarray  # (52, 468, 3) per unit blendshape score
    identity_basis: np.ndarray  # (K, 468, 3) orthonormal directions x standard deviation
    mean_texture: np.ndarray  # (T, T, 3) float32 in [0, 1]
    texture_basis: np.ndarray  # (Kt, T, T, 3) direction x standard deviation
    uv: np.ndarray  # (468, 2)
    triangles: np.ndarray  # (F, 3)
    info: dict

    # -- files -----------------------------------------------------------------------
    def save(self, path: Path = MORPHABLE_FILE) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {
            "mean_shape": self.mean_shape.astype(np.float32),
            "expression_basis": self.expression_basis.astype(np.float32),
            "identity_basis": self.identity_basis.astype(np.float32),
            "mean_texture": np.round(self.mean_texture * 255).astype(np.uint8),
            "texture_basis": self.texture_basis.astype(np.float16),
            "uv": self.uv.astype(np.float32),
            "triangles": self.triangles.astype(np.int32),
        }
        write_tensors(path, tensors, self.info)

    @classmethod
    def load(cls, path: Path | str | None = None) -> MorphableModel:
        path = Path(path) if path else MORPHABLE_FILE
        if not path.is_file():
            raise ModelFileError(f"The morphable model {path.name} is missing from "
                                 f"{path.parent}; restore it with `git checkout models/` or "
                                 "rebuild it with `studio build-morphable`.")
        try:
            t, info = read_tensors(path)
            return cls(t["mean_shape"].astype(np.float64),
                       t["expression_basis"].astype(np.float64),
                       t["identity_basis"].astype(np.float64),
                       t["mean_texture"].astype(np.float32) / 255,
                       t["texture_basis"].astype(np.float32), t["uv"],
                       t["triangles"], info)
        except (KeyError, OSError, ValueError) as exc:
            raise ModelFileError(f"The morphable model {path} cannot be read ({exc}).") from exc

    # -- shape -----------------------------------------------------------------------
    @property
    def n_identity(self) -> int:
        return len(self.identity_basis)

    def shape(self, identity: np.ndarray | None = None,
              expression: np.ndarray | None = None) -> np.ndarray:
        out = self.mean_shape.copy()
        if expression is not None:
            out += np.tensordot(expression, self.expression_basis, axes=1)
        if identity is not None:
            out += np.tensordot(identity, self.identity_basis, axes=1)
        return out

    def texture(self, coefficients: np.ndarray | None = None) -> np.ndarray:
        """(T, T, 3) uint8 texture for texture coefficients (None: the mean texture)."""
        tex = self.mean_texture
        if coefficients is not None:
            tex = tex + np.tensordot(coefficients, self.texture_basis, axes=1)
        return np.clip(np.round(tex * 255), 0, 255).astype(np.uint8)

    def sample_identity(self, seed: int, spread: float = 0.8, away_from: Fit | None = None,
                        margin: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """Shape and texture coefficients of a new identity, deterministic in the seed.
        ``spread`` < 1 keeps samples away from the model's extremes. With ``away_from``, the
        sample is moved to the far side of the mean face from that fitted original (at
        least ``margin`` standard deviations along the original's direction), in shape and
        in texture, so that no seed lands close to the person it replaces."""
        rng = np.random.default_rng(seed)
        shape = np.clip(rng.standard_normal(self.n_identity), -2.5, 2.5) * spread
        tex = np.clip(rng.standard_normal(len(self.texture_basis)), -2.5, 2.5) * spread
        if away_from is not None:
            shape = _opposite(shape, away_from.identity, margin)
            if away_from.texture is not None:
                tex = _opposite(tex, away_from.texture, margin)
        return shape, tex

    def project_texture(self, texture: np.ndarray, weight: np.ndarray) -> np.ndarray:
        """Texture coefficients of an unwrapped photo (uint8), counting visible texels."""
        x = (texture.astype(np.float32) / 255 - self.mean_texture) * weight[..., None]
        basis, norm2 = self._texture_projector
        return basis @ x.ravel() / norm2

    @cached_property
    def _texture_projector(self) -> tuple[np.ndarray, np.ndarray]:
        basis = np.ascontiguousarray(self.texture_basis.reshape(len(self.texture_basis), -1),
                                     dtype=np.float32)
        return basis, np.maximum((basis ** 2).sum(1), 1e-9)

    # -- fitting ---------------------------------------------------------------------
    @cached_property
    def _design(self) -> np.ndarray:
        """Columns: identity components, then expression components (flattened)."""
        return np.concatenate([self.identity_basis.reshape(self.n_identity, -1),
                               self.expression_basis.reshape(len(self.expression_basis), -1)]).T

    @cached_property
    def _gram(self) -> np.ndarray:
        return self._design.T @ self._design

    def fit(self, landmarks: np.ndarray, blendshapes: np.ndarray, iterations: int = 4,
            noise_cm: float = 0.25, expression_std: float = 0.3) -> Fit:
        """Pose, identity and expression by alternating similarity Procrustes and a MAP
        (ridge) solve: identity coefficients have a unit normal prior, expression a prior
        centred on MediaPipe's own blendshape scores; landmark noise ``noise_cm``."""
        target = to_model(np.asarray(landmarks)[:N_MESH])
        b = np.asarray(blendshapes, np.float64)
        a = self._design
        k = self.n_identity
        prior = np.concatenate([np.zeros(k), b])
        precision = noise_cm ** 2 * np.concatenate([np.ones(k),
                                                    np.full(len(b), expression_std ** -2)])
        lhs = self._gram + np.diag(precision)
        coef = prior.copy()
        for _ in range(iterations):
            s, r, t = umeyama(self.shape(coef[:k], coef[k:]), target)
            local = ((target - t) @ r) / s  # the target in model space
            rhs = a.T @ (local - self.mean_shape).ravel() + precision * prior
            coef = np.linalg.solve(lhs, rhs)
        shape = self.shape(coef[:k], coef[k:])
        s, r, t = umeyama(shape, target)
        resid = s * shape @ r.T + t - target
        rms = float(np.sqrt((resid[:, :2] ** 2).sum(1).mean()))
        eyes = float(np.linalg.norm(target[33, :2] - target[263, :2]))
        return Fit(s, r, t, coef[:k], coef[k:], rms, rms / max(eyes, 1e-9))

    def posed(self, fit: Fit, identity: np.ndarray | None = None,
              expression: np.ndarray | None = None, rotation: np.ndarray | None = None
              ) -> np.ndarray:
        """(468, 3) image-space vertices of a shape in the fitted pose (or ``rotation``)."""
        shape = self.shape(identity, fit.expression if expression is None else expression)
        r = fit.rotation if rotation is None else rotation
        centre = self.mean_shape.mean(0)
        # Rotate about the head's centre so that a changed rotation keeps the face in place.
        pivot = fit.scale * fit.rotation @ centre + fit.translation
        return to_image(fit.scale * (shape - centre) @ r.T + pivot)
