"""Everything the studio window asks of the models, behind one object with no Qt in it."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis, FaceAnalyzer, ImageAnalysis
from studio.core.analysis.attributes import Attributes
from studio.core.analysis.face_search import UnfittedFace
from studio.core.analysis.images import LoadedImage, load_image
from studio.core.analysis.search_settings import MIN_FACE_DEFAULT, UNFITTED_POLICIES
from studio.core.metrics.comparison import Comparison, compare
from studio.core.surrogates.compositing import is_grayscale
from studio.core.surrogates.gan_draws import GAN_DRAWS

if TYPE_CHECKING:  # imports torch / OpenGL
    from studio.core.generator.sampler import Sampler
    from studio.core.morphable.surrogate import Request3D, Surrogate3D, Surrogate3DMaker
    from studio.core.surrogates.incontext import (
        ContextRequest,
        ContextResult,
        InContextMaker,
        PreparedFace,
    )


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
    """Loads the analyzer and the generator once; every method may run in a worker thread.

    With ``staged=True`` only the analysis half loads (MediaPipe, gender, calibration: no
    torch), so a window can show a photo's landmarks and attributes about three seconds
    sooner; ``load_generation`` then adds the two recognizers (dlib's and the second, which
    every surrogate answers to) and the generator, with its frozen one-sample path for live
    sliders.
    """

    def __init__(self, weights: str | Path | None = None, staged: bool = False,
                 landmarkers: int = 1, min_face: float | None = None) -> None:
        self._weights = weights
        self._staged = staged
        # Every face that the engine's callers replace is looked for with the recall
        # detector, down to ``min_face`` pixels (analysis.detector).
        self.analyzer = FaceAnalyzer(identity=False, landmarkers=landmarkers, recall=True,
                                     min_face=min_face or MIN_FACE_DEFAULT)
        self.generator: Sampler | None = None
        #: Draws per GAN surrogate at most (``gan_draws``); 1 measures the bare generator.
        self.gan_draws = GAN_DRAWS
        self._maker3d: Surrogate3DMaker | None = None
        self._fits: dict[int, tuple] = {}  # id(face) -> (face, Fit): one fit per face
        self._incontext: InContextMaker | None = None
        self._prepared: tuple[int, list[PreparedFace]] | None = None  # id(rgb), the faces
        self._grey: tuple[np.ndarray, bool] | None = None  # the photo on screen: grey?
        if not staged:
            self.load_generation()
            self.load_3d()

    def load_generation(self) -> None:
        from studio.core.analysis.identity import IdentityEncoder

        if self.analyzer.identity is None:
            self.analyzer.identity = IdentityEncoder()
        self.analyzer.load_second()
        if self.generator is None:
            self.generator = self._sampler(self._weights)

    def _sampler(self, weights: str | Path | None):
        from studio.core.generator.sampler import Sampler

        sampler = Sampler(weights)
        if self._staged:
            sampler.freeze_single()  # the window's live slider samples
        return sampler

    def switch_generator(self, weights: str | Path | None) -> str:
        """Load another generator (a choice's key or a file; the window's Generator menu)
        and draw with it from the next surrogate on; returns its name. The old one serves
        until the new one has loaded, and stays if loading fails."""
        self.generator, self._weights = self._sampler(weights), weights
        return self.model_name

    @property
    def can_generate(self) -> bool:
        return self.generator is not None

    def close(self) -> None:
        if self._maker3d is not None:
            self._maker3d.close()
        self.analyzer.close()

    # -- 3D ----------------------------------------------------------------------------
    def load_3d(self) -> None:
        """The morphable model and its offscreen renderer, warmed up with one render so that
        OpenGL's start-up (a platform probe, pyrender's imports, the context) happens here
        and not on the first slider move, and never alongside torch's import: scipy, which
        pyrender pulls in, trips over a half-imported torch."""
        if self._maker3d is None:
            from studio.core.morphable.surrogate import Surrogate3DMaker

            maker = Surrogate3DMaker()
            model = maker.model
            maker.renderer.render(model.mean_shape * (10, -10, -10) + 128, model.triangles,
                                  mode="shaded")
            self._maker3d = maker

    @property
    def can_render3d(self) -> bool:
        return self._maker3d is not None

    @property
    def maker3d(self) -> Surrogate3DMaker:
        if self._maker3d is None:
            self.load_3d()
        return self._maker3d

    def surrogate3d(self, image: LoadedImage, face: FaceAnalysis,
                    request: Request3D) -> Surrogate3D:
        maker = self.maker3d
        cached = self._fits.get(id(face))
        if cached is None or cached[0] is not face:
            fit, _ = maker.fit(face.landmarks, face.blendshapes, image.rgb)
            self._fits = {id(face): (face, fit)}  # only the face on screen is kept
        else:
            fit = cached[1]
        if not request.grey and self._is_grey(image.rgb):  # a grey photo gets a grey face
            request = replace(request, grey=True)
        return maker.make(image.rgb, face.landmarks, face.blendshapes, face.attributes,
                          request, fit=fit)

    def _is_grey(self, rgb: np.ndarray) -> bool:
        """``is_grayscale`` of the photo on screen, measured once per photo, not on every
        slider move."""
        cached = self._grey
        if cached is None or cached[0] is not rgb:
            cached = self._grey = (rgb, is_grayscale(rgb))
        return cached[1]

    # -- in context --------------------------------------------------------------------
    @property
    def incontext(self) -> InContextMaker:
        """The in-context maker, sharing the 3D surrogate's model and renderer."""
        if self._incontext is None:
            from studio.core.surrogates.incontext import InContextMaker

            maker = self.maker3d
            self._incontext = InContextMaker(model=maker.model, renderer=maker.renderer)
        return self._incontext

    def run_notes(self) -> tuple[str, ...]:
        """Notes that hold for every photo this engine replaces, for a run to say once, not
        with each photo: the in-context faces go unrefined (the refiner's file is missing
        or unreadable; ``refiner.model.load_refiner`` names it)."""
        maker = self._incontext
        if maker is None or maker.refiner is not None:
            return ()
        return (maker.refiner_note,)

    def in_context(self, image: LoadedImage, faces: list[FaceAnalysis],
                   request: ContextRequest, verify: bool = True,
                   unfitted: Sequence[UnfittedFace] = ()) -> ContextResult:
        """The photo with ``faces`` replaced; what each face needs from the photo is measured
        once per photo and face list, so a slider only re-renders. With ``verify`` every new
        face is read back and drawn again until it is a different person with the
        original's smile decision (studio.core.surrogates.verified); the window's live
        slider path skips that and shows the measures instead. Faces found but not fitted
        (``unfitted``) are masked or blurred (``surrogates.unfitted``)."""
        result = self._in_context(image, faces, request, verify)
        if not unfitted:
            return result
        from dataclasses import replace

        from studio.core.surrogates.unfitted import cover_unfitted

        covered, _ = cover_unfitted(result.image, [u.box for u in unfitted],
                                    UNFITTED_POLICIES[0])
        return replace(result, image=covered)

    def _in_context(self, image: LoadedImage, faces: list[FaceAnalysis],
                    request: ContextRequest, verify: bool) -> ContextResult:
        maker = self.incontext
        key = hash((id(image.rgb), *(id(f) for f in faces)))
        cached = self._prepared
        if cached is None or cached[0] != key or [p.face for p in cached[1]] != faces:
            cached = (key, [maker.prepare(image.rgb, f) for f in faces])
            self._prepared = cached  # only the photo on screen is kept
        if not verify:
            return maker.make(image.rgb, faces, request, prepared=cached[1])
        from studio.core.surrogates.verified import replace_verified

        if self.analyzer.identity is None:
            from studio.core.analysis.identity import IdentityEncoder

            self.analyzer.identity = IdentityEncoder()
        self.analyzer.load_second()
        return replace_verified(maker, self.analyzer, image.rgb, faces, request,
                                prepared=cached[1]).result

    def compare3d(self, original: FaceAnalysis, result: Surrogate3D) -> Comparison:
        return compare(self.analyzer, original, result.image)

    @property
    def device_name(self) -> str:
        return self.generator.device_name if self.generator else "loading the generator"

    @property
    def model_name(self) -> str:
        if self.generator is None:
            return "generator not loaded yet"
        from studio.core.generator.choices import title_of

        step = self.generator.metadata.get("step", "?")
        return f"{title_of(self.generator.path)} (step {step})"

    def open(self, path: str | Path) -> tuple[LoadedImage, ImageAnalysis]:
        image = load_image(path)
        return image, self.analyze(image)

    def analyze(self, image: LoadedImage) -> ImageAnalysis:
        return self.analyzer.analyze(image)

    def describe(self, image: LoadedImage, analysis: ImageAnalysis) -> ImageAnalysis:
        """Add the identity descriptors an analysis made before ``load_generation`` lacks."""
        return self.analyzer.describe(image.rgb, analysis)

    def surrogate(self, requested: Attributes, z: np.ndarray) -> SurrogateResult:
        if self.generator is None:
            raise RuntimeError("the generator is still loading")
        t0 = time.perf_counter()
        image = self.generator.sample(requested, z=z)[0]
        return SurrogateResult(image, requested, z, (time.perf_counter() - t0) * 1e3)

    def compare(self, original: FaceAnalysis, result: SurrogateResult) -> ComparisonResult:
        t0 = time.perf_counter()
        comparison = compare(self.analyzer, original, result.image)
        return ComparisonResult(result, comparison, (time.perf_counter() - t0) * 1e3)
