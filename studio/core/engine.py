"""Everything the studio window asks of the models, behind one object with no Qt in it."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.analysis import FaceAnalysis, FaceAnalyzer, ImageAnalysis
from studio.core.attributes import Attributes
from studio.core.comparison import Comparison, compare
from studio.core.generator import Generator
from studio.core.images import LoadedImage, load_image
from studio.core.training_data import CropFrame, crop


@dataclass(frozen=True)
class SurrogateResult:
    """One generated surrogate, with what it was asked for and how it measured up."""

    image: np.ndarray  # (64, 64, 3) uint8
    requested: Attributes
    z: np.ndarray
    comparison: Comparison | None
    generate_ms: float
    compare_ms: float


class SurrogateEngine:
    """Loads the analyzer and the generator once; every method may run in a worker thread."""

    def __init__(self, weights: str | Path | None = None) -> None:
        self.analyzer = FaceAnalyzer()
        self.generator = Generator(weights)

    def close(self) -> None:
        self.analyzer.close()

    @property
    def device_name(self) -> str:
        return self.generator.device_name

    @property
    def model_name(self) -> str:
        step = self.generator.metadata.get("step", "?")
        return f"{self.generator.path.stem} (step {step})"

    def open(self, path: str | Path) -> tuple[LoadedImage, ImageAnalysis]:
        image = load_image(path)
        return image, self.analyze(image)

    def analyze(self, image: LoadedImage) -> ImageAnalysis:
        return self.analyzer.analyze(image)

    @staticmethod
    def original_crop(rgb: np.ndarray, face: FaceAnalysis, size: int = 64) -> np.ndarray:
        """The original face in the generator's framing (translation and scale only)."""
        return crop(rgb, CropFrame.from_landmarks(face.landmarks), size=size)

    def surrogate(self, requested: Attributes, z: np.ndarray,
                  original: FaceAnalysis | None) -> SurrogateResult:
        t0 = time.perf_counter()
        image = self.generator.sample(requested, z=z)[0]
        t1 = time.perf_counter()
        comparison = compare(self.analyzer, original, image) if original is not None else None
        t2 = time.perf_counter()
        return SurrogateResult(image, requested, z, comparison, (t1 - t0) * 1e3,
                               (t2 - t1) * 1e3)
