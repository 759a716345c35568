"""Every face of a whole photo replaced by one method: the work ``studio anonymize`` does
for each photo, apart from files.

``context`` replaces the faces inside the photo (``incontext``); ``3d`` and ``gan`` draw a
surrogate in each face's canonical crop and put it back into the photo with the same
compositing; the naive methods (``baselines``) blur, pixelate or black out each face at the
evaluation's strong setting. A face too small for a drawn surrogate is blurred instead, and
the result says so.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.face_search import UnfittedFace
from studio.core.analysis.images import LoadedImage
from studio.core.analysis.search_settings import UNFITTED_POLICIES
from studio.core.surrogates import compositing
from studio.core.surrogates.making import RENDERED_METHODS
from studio.core.surrogates.unfitted import cover_unfitted, guard

#: The ways a face can be replaced: the surrogate methods, then the naive baselines.
METHODS = ("context", "3d", "gan", "blur", "pixelate", "mask")
NAIVE_METHODS = ("blur", "pixelate", "mask")
#: The naive methods at the evaluation's strong settings: blur σ as a fraction of the face's
#: width, pixelation blocks across the face; the mask covers the whole face.
BLUR_SIGMA = 0.12
PIXEL_BLOCKS = 8
#: The largest crop a 3D surrogate is drawn in before it is put back into its photo.
MAX_CROP = 1024


@dataclass(frozen=True)
class Replaced:
    """A photo with its faces replaced, and how each face went. ``masked`` counts faces
    found but not fitted that were masked (``unfitted``); ``unhandled`` the faces the
    method left unchanged, which the last check masked (a fault, reported as one)."""

    image: np.ndarray  # (H, W, 3) uint8, the photo's size
    replaced: int
    blurred: int
    notes: tuple[str, ...] = ()
    masked: int = 0
    unhandled: int = 0

    @property
    def found(self) -> int:
        return self.replaced + self.blurred + self.masked


def anonymize_engine(method: str, workers: int = 1, min_face: float | None = None):
    """A ``SurrogateEngine`` like ``batch_engine``'s, with only what ``method`` needs: the
    generator for ``gan``, the renderer for the rendered methods, neither for the naive
    ones (which then start in about a second)."""
    from studio.core.surrogates.engine import SurrogateEngine

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}")
    workers = max(1, workers)
    engine = SurrogateEngine(staged=True, landmarkers=workers, min_face=min_face)
    try:
        if method == "gan":
            import torch

            from studio.core.generator.sampler import Sampler

            if workers > 1:
                torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
            engine.generator = Sampler()
        elif method in RENDERED_METHODS:
            engine.load_3d()
    except BaseException:
        engine.close()
        raise
    return engine


@contextmanager
def small_blas() -> Iterator[None]:
    """One BLAS thread while faces are replaced: each product is small (a 40-row texture
    projection, SH fits) and photos run in parallel already, and OpenBLAS's own threads,
    waiting for cores that a busy machine does not give them, doubled the time per face
    (136 against 68 ms for a 300 px face on two busy cores)."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield


# -- replacing the faces of one photo ----------------------------------------------------
def photo_seed(seed: int, rgb: np.ndarray) -> int:
    """The identities of one photo: from the run's seed and the photo's pixels, so that no
    two photos get the same new faces and a repeated run gets the same ones."""
    digest = hashlib.blake2b(np.ascontiguousarray(rgb).data, digest_size=8,
                             key=str(seed).encode())
    return int.from_bytes(digest.digest(), "big") % 1_000_000 + 1


def replace_faces(engine, image: LoadedImage, faces: list[FaceAnalysis], method: str,
                  seed: int, context: str = "keep", unfitted: tuple[UnfittedFace, ...] = (),
                  policy: str = UNFITTED_POLICIES[0]) -> Replaced:
    """``image`` with every one of ``faces`` replaced by ``method``; face i gets identity
    seed ``seed + 7919 i``. Faces found but not fitted (``unfitted``) are blurred or
    masked (``policy``), and any face the method left unchanged is masked: no face found
    leaves as it came. The image itself is not modified."""
    done = _replace_fitted(engine, image, faces, method, seed, context)
    out, fates = cover_unfitted(done.image, [u.box for u in unfitted], policy)
    boxes = [f.box for f in faces] + [u.box for u in unfitted]
    out, left = guard(image.rgb, out, boxes)
    notes = [f"face {len(faces) + i + 1}: {f.reason}" for i, f in enumerate(fates)]
    notes += [f"face {i + 1}: left unchanged by {method}: masked" for i in left]
    masked = sum(f.kind == "masked" for f in fates)
    return Replaced(out, done.replaced, done.blurred + len(fates) - masked,
                    done.notes + tuple(notes), masked, len(left))


def _replace_fitted(engine, image: LoadedImage, faces: list[FaceAnalysis], method: str,
                    seed: int, context: str) -> Replaced:
    rgb = image.rgb
    if method == "context":
        from studio.core.surrogates.incontext import ContextRequest

        result = engine.in_context(image, faces, ContextRequest(seed=seed, context=context))
        notes = [f"face {f.index + 1}: {f.reason}" for f in result.faces if not f.replaced]
        return Replaced(result.image, result.replaced, len(faces) - result.replaced,
                        tuple(notes) + result.notes)
    if method in NAIVE_METHODS:
        from studio.core.surrogates import baselines

        out = rgb
        for face in faces:
            if method == "blur":
                out = baselines.blur(out, face.landmarks, BLUR_SIGMA)
            elif method == "pixelate":
                out = baselines.pixelate(out, face.landmarks, PIXEL_BLOCKS)
            else:
                out = baselines.black_mask(out, face.landmarks, "face")
        return Replaced(out if out is not rgb else rgb.copy(), len(faces), 0)
    return _replace_drawn(engine, image, faces, method, seed)


def _replace_drawn(engine, image: LoadedImage, faces: list[FaceAnalysis], method: str,
                   seed: int) -> Replaced:
    """GAN and 3D surrogates, drawn in each face's crop and put back into the photo."""
    rgb = image.rgb
    seeds = [seed + 7919 * i for i in range(len(faces))]
    widths = [compositing.face_width(f.landmarks) for f in faces]
    fits = [w >= compositing.MIN_FACE_PX for w in widths]
    drawn: dict[int, np.ndarray] = {}
    if method == "gan" and any(fits):
        from studio.core.generator.latent import z_for_seed

        index = [i for i, ok in enumerate(fits) if ok]
        z = np.stack([z_for_seed(seeds[i]) for i in index])
        made = engine.generator.sample([faces[i].attributes for i in index], z=z)
        drawn = dict(zip(index, made, strict=True))
    out, notes = rgb.copy(), []
    for i, face in enumerate(faces):
        if not fits[i]:
            out, _ = compositing.blur_face(out, face.landmarks)
            notes.append(f"face {i + 1}: {widths[i]:.0f} px wide, too small to fit: blurred")
            continue
        if method == "3d":
            from studio.core.analysis.framing import CropFrame
            from studio.core.morphable.surrogate import Request3D

            side = CropFrame.from_landmarks(np.asarray(face.landmarks)).side
            size = int(np.clip(round(side), 64, MAX_CROP))
            face_rgb = engine.maker3d.make(rgb, face.landmarks, face.blendshapes,
                                           face.attributes,
                                           Request3D(identity=seeds[i], size=size)).image
        else:
            face_rgb = drawn[i]
        out = compositing.paste_crop(out, face.landmarks, face_rgb)
    blurred = sum(not ok for ok in fits)
    return Replaced(out, len(faces) - blurred, blurred, tuple(notes))


def anonymize_rgb(engine, rgb: np.ndarray, method: str, seed: int, context: str = "keep",
                  policy: str = UNFITTED_POLICIES[0]) -> Replaced:
    """One photo's pixels, searched and replaced as ``studio anonymize`` does it, apart
    from files (the recall benchmark and its test)."""
    image = LoadedImage(np.ascontiguousarray(rgb), "<array>", "RGB", False)
    analysis = engine.analyze(image)
    return replace_faces(engine, image, analysis.faces, method, photo_seed(seed, image.rgb),
                         context, analysis.unfitted, policy)
