"""The makers of the registered methods (``surrogates.registry``): how each draws a face's
surrogates and how it replaces every face of a whole photo.

A maker has ``load`` (what it needs in the engine), ``make`` (one output per identity
seed for one face: a face crop, or the whole photo for a method that replaces inside
it), ``replace`` (every face of a photo) and, where its draws are read back already,
``measured``. ``MethodMaker`` gives a crop method all but ``make``.
"""

from __future__ import annotations

import os

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.images import LoadedImage
from studio.core.surrogates import compositing
from studio.core.surrogates.privacy import DEFAULT_PRIVACY, privacy_preset
from studio.core.surrogates.whole_photo import Replaced

#: The largest crop a 3D surrogate is drawn in before it is put back into its photo.
MAX_CROP = 1024
#: Face i of a photo gets identity seed ``seed + FACE_SEED_STEP * i``.
FACE_SEED_STEP = 7919


class MethodMaker:
    """A method that draws a face crop per identity seed and pastes it back into photos."""

    #: Its faces are read back and drawn again until both recognizers call them another
    #: person (``metrics.comparison.another_person``): the evaluation says it steers on them.
    read_back = False

    def load(self, engine, workers: int = 1) -> None:
        """Load what the method needs into ``engine`` (nothing by default)."""

    def make(self, engine, image: LoadedImage, face: FaceAnalysis, seeds: list[int],
             others: list | None = None) -> list[np.ndarray]:
        raise NotImplementedError

    def measured(self, engine, image: LoadedImage, face: FaceAnalysis, seeds: list[int]
                 ) -> tuple[list, list] | None:
        """(images, comparisons) where the draws were read back already, else None."""
        return None

    def draw_fitted(self, engine, image: LoadedImage, faces: list[FaceAnalysis],
                    index: list[int], seeds: list[int]) -> dict[int, np.ndarray]:
        """The face crops of ``faces[i]`` for every i in ``index``, each with its seed."""
        return {i: self.make(engine, image, faces[i], [seeds[i]])[0] for i in index}

    def replace(self, engine, image: LoadedImage, faces: list[FaceAnalysis], seed: int,
                context: str = "keep", privacy: str | None = None) -> Replaced:
        """Each face drawn in its crop and put back into the photo with the in-context
        compositing; a face too small for a drawn surrogate is blurred, and said so.
        ``privacy``: the in-context presets (``surrogates.privacy``), not a crop's."""
        rgb = image.rgb
        seeds = [seed + FACE_SEED_STEP * i for i in range(len(faces))]
        widths = [compositing.face_width(f.landmarks) for f in faces]
        fits = [w >= compositing.MIN_FACE_PX for w in widths]
        index = [i for i, ok in enumerate(fits) if ok]
        drawn = self.draw_fitted(engine, image, faces, index, seeds) if index else {}
        out, notes = rgb.copy(), []
        for i, face in enumerate(faces):
            if not fits[i]:
                out, _ = compositing.blur_face(out, face.landmarks)
                notes.append(f"face {i + 1}: {widths[i]:.0f} px wide, too small to fit: blurred")
                continue
            out = compositing.paste_crop(out, face.landmarks, drawn[i])
        blurred = sum(not ok for ok in fits)
        return Replaced(out, len(faces) - blurred, blurred, tuple(notes))


class GanMethod(MethodMaker):
    """The conditional generator's face, drawn until it is another person (``gan_draws``)."""

    read_back = True

    def load(self, engine, workers: int = 1) -> None:
        import torch

        from studio.core.generator.sampler import Sampler

        if workers > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
        if engine.generator is None:
            engine.generator = Sampler()

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        return self.measured(engine, image, face, seeds)[0]

    def measured(self, engine, image, face, seeds):
        """Each draw read back by both recognizers: the original's second descriptor is
        made here when the face was analysed without it."""
        from studio.core.surrogates.making import gan_draws

        (face,) = engine.analyzer.describe2(image.rgb, [face])
        draws = gan_draws(engine, face, seeds)
        return [d.image for d in draws], [d.comparison for d in draws]

    def draw_fitted(self, engine, image, faces, index, seeds):
        """One batch through the generator, one latent per face's seed (not read back:
        the whole photo is checked as one)."""
        from studio.core.generator.latent import z_for_seed

        z = np.stack([z_for_seed(seeds[i]) for i in index])
        made = engine.generator.sample([faces[i].attributes for i in index], z=z)
        return dict(zip(index, made, strict=True))


class MorphableMethod(MethodMaker):
    """The morphable model's face rendered on its own, with the original's expression and
    P(male) (the gender axis), grey for a grayscale photo."""

    def load(self, engine, workers: int = 1) -> None:
        engine.load_3d()

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        from studio.core.morphable.surrogate import Request3D
        from studio.core.surrogates.making import EXPORT_SIZE

        return [engine.surrogate3d(image, face, Request3D(identity=s, size=EXPORT_SIZE)).image
                for s in seeds]

    def draw_fitted(self, engine, image, faces, index, seeds):
        """Each face rendered at its own crop's size (64 to MAX_CROP px)."""
        from studio.core.analysis.framing import CropFrame
        from studio.core.morphable.surrogate import Request3D

        out, grey = {}, compositing.is_grayscale(image.rgb)
        for i in index:
            face = faces[i]
            side = CropFrame.from_landmarks(np.asarray(face.landmarks)).side
            size = int(np.clip(round(side), 64, MAX_CROP))
            out[i] = engine.maker3d.make(image.rgb, face.landmarks, face.blendshapes,
                                         face.attributes,
                                         Request3D(identity=seeds[i], size=size,
                                                   grey=grey)).image
        return out


class InContextMethod(MethodMaker):
    """The face replaced inside the photo (``surrogates.incontext``), read back
    (``surrogates.verified``)."""

    read_back = True

    def __init__(self, context: str = "keep", refine: bool = True,
                 privacy: str = DEFAULT_PRIVACY) -> None:
        self.context, self.refine, self.privacy = context, refine, privacy

    def load(self, engine, workers: int = 1) -> None:
        engine.load_3d()

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        """The whole photo per seed under the method's preset (``studio batch``,
        ``studio evaluate``), as ``replace`` draws it."""
        from studio.core.surrogates.making import in_context_photos

        return in_context_photos(engine, image, face, seeds, others, request=self.request)

    def request(self, seed: int, context: str | None = None, privacy: str | None = None):
        """The ``ContextRequest`` for a seed under the privacy preset (``privacy``, else the
        method's): a preset that blurs the context blurs it whatever ``context`` says; one
        that keeps it takes ``context`` or the method's own."""
        preset = privacy_preset(privacy or self.privacy)
        context = (context or self.context) if preset.context == "keep" else preset.context
        return preset.request(seed=seed, refine=self.refine, context=context)

    def replace(self, engine, image, faces, seed, context=None, privacy=None) -> Replaced:
        """Every face replaced under the privacy preset (``request``)."""
        result = engine.in_context(image, faces, self.request(seed, context, privacy))
        notes = [f"face {f.index + 1}: {f.reason}" for f in result.faces if not f.replaced]
        return Replaced(result.image, result.replaced, len(faces) - result.replaced,
                        tuple(notes) + result.notes)


class NaiveMethod(MethodMaker):
    """A naive baseline (a function of ``surrogates.baselines``) at one strength: blur σ
    as a share of the face's width, pixelation blocks across the face, or the region a
    black mask covers."""

    def __init__(self, baseline: str, strength: float | int | str) -> None:
        self.baseline, self.strength = baseline, strength

    def apply(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        from studio.core.surrogates import baselines  # OpenCV: not needed to list methods

        return getattr(baselines, self.baseline)(rgb, landmarks, self.strength)

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        return [self.apply(image.rgb, face.landmarks) for _ in seeds]

    def replace(self, engine, image, faces, seed, context=None, privacy=None) -> Replaced:
        rgb = out = image.rgb
        for face in faces:
            out = self.apply(out, face.landmarks)
        return Replaced(out if out is not rgb else rgb.copy(), len(faces), 0)
