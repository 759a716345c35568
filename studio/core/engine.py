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


@dataclass(frozen=True)
class SurrogateResult:
    """One generated surrogate and what it was asked for."""

    image: np.ndarray  # (64, 64, 3) uint8
    requested: Attributes
    z: np.ndarray
    generate_ms: float


@dataclass(frozen=True)
class ComparisonResult:
    """How a surrogate measured up against its original (the slower half of a slider move)."""

    surrogate: SurrogateResult
    comparison: Comparison
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

    def surrogate(self, requested: Attributes, z: np.ndarray) -> SurrogateResult:
        t0 = time.perf_counter()
        image = self.generator.sample(requested, z=z)[0]
        return SurrogateResult(image, requested, z, (time.perf_counter() - t0) * 1e3)

    def compare(self, original: FaceAnalysis, result: SurrogateResult) -> ComparisonResult:
        t0 = time.perf_counter()
        comparison = compare(self.analyzer, original, result.image)
        return ComparisonResult(result, comparison, (time.perf_counter() - t0) * 1e3)
