"""The de-identification methods an evaluation compares: the surrogates, and blur,
pixelation and masks at two strengths each (the naive baselines)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

from studio.core.errors import StudioError


@dataclass(frozen=True)
class Method:
    key: str
    family: str
    label: str
    aligned: bool  # the output's pixels line up with the original's
    light: bool = False  # the lighter of a naive method's two strengths
    seeded: bool = False  # a surrogate: its output changes with the identity seed

    @property
    def rendered(self) -> bool:
        """Made with the morphable model's renderer (OpenGL is loaded for it)."""
        from studio.core.surrogates.making import RENDERED_METHODS

        return self.family.split("-")[0] in RENDERED_METHODS


METHODS: dict[str, Method] = {m.key: m for m in (
    Method("original", "original", "original (reference)", True),
    Method("gan", "gan", "GAN surrogate", False, seeded=True),
    Method("3d", "3d", "3D surrogate", False, seeded=True),
    Method("context", "context", "in-context surrogate", True, seeded=True),
    Method("context-blur", "context-blur", "in-context surrogate, context blurred", True,
           seeded=True),
    # The composite before the refiner (issue 27), so that realism measures both.
    Method("context-raw", "context-raw", "in-context composite, unrefined", True,
           seeded=True),
    Method("blur-light", "blur", "blur, σ 5% of face width", True, light=True),
    Method("blur-strong", "blur", "blur, σ 12% of face width", True),
    Method("pixelate-light", "pixelate", "pixelation, 16 blocks across", True, light=True),
    Method("pixelate-strong", "pixelate", "pixelation, 8 blocks across", True),
    Method("mask-eyes", "mask", "black bar over the eyes", True, light=True),
    Method("mask-face", "mask", "black mask over the face", True),
)}
FAMILIES = ("gan", "3d", "context", "context-blur", "blur", "pixelate", "mask")


def methods_for(families: Iterable[str]) -> list[Method]:
    """The methods of the named families, after the original (always the reference)."""
    families = [f.strip() for f in families if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise StudioError(f"unknown method {', '.join(unknown)}; use {', '.join(FAMILIES)}")
    return [m for m in METHODS.values() if m.family == "original" or m.family in families]


def naive_output(method: Method, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    from studio.core.surrogates import baselines  # OpenCV: not needed to list the methods

    match method.key:
        case "blur-light":
            return baselines.blur(rgb, landmarks, 0.05)
        case "blur-strong":
            return baselines.blur(rgb, landmarks, 0.12)
        case "pixelate-light":
            return baselines.pixelate(rgb, landmarks, 16)
        case "pixelate-strong":
            return baselines.pixelate(rgb, landmarks, 8)
        case "mask-eyes":
            return baselines.black_mask(rgb, landmarks, "eyes")
        case "mask-face":
            return baselines.black_mask(rgb, landmarks, "face")
    raise StudioError(f"{method.key} is not a naive method")
