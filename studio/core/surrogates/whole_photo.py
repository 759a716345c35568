"""Every face of a whole photo replaced by one method: the work ``studio anonymize`` does
for each photo, apart from files.

Each method's maker (``surrogates.registry``, ``surrogates.method_makers``) replaces the
faces it can fit: inside the photo, or drawn in each face's crop and put back with the
in-context compositing, or blurred, pixelated or blacked out. Then every face found but
not fitted is covered, and a last check masks any face left as it was.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.face_search import UnfittedFace
from studio.core.analysis.images import LoadedImage
from studio.core.analysis.search_settings import UNFITTED_POLICIES
from studio.core.surrogates.privacy import DEFAULT_PRIVACY
from studio.core.surrogates.registry import REGISTRY
from studio.core.surrogates.unfitted import cover_unfitted, guard


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
    """A ``SurrogateEngine`` like ``batch_engine``'s, with only what ``method`` (a key or
    an anonymize choice) needs loaded: the naive methods then start in about a second."""
    from studio.core.surrogates.engine import SurrogateEngine

    spec = REGISTRY.resolve(method)
    workers = max(1, workers)
    engine = SurrogateEngine(staged=True, landmarkers=workers, min_face=min_face)
    try:
        REGISTRY.maker(spec.key).load(engine, workers)
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
                  policy: str = UNFITTED_POLICIES[0], privacy: str | None = None) -> Replaced:
    """``image`` with every one of ``faces`` replaced by ``method`` (a key or an anonymize
    choice); face i gets identity seed ``seed + 7919 i``. Faces found but not fitted
    (``unfitted``) are blurred or masked (``policy``), and any face the method left
    unchanged is masked: no face found leaves as it came. The image itself is not modified.
    ``privacy``: the in-context method's preset (``surrogates.privacy``)."""
    done = _replace_fitted(engine, image, faces, method, seed, context, privacy)
    out, fates = cover_unfitted(done.image, [u.box for u in unfitted], policy)
    boxes = [f.box for f in faces] + [u.box for u in unfitted]
    out, left = guard(image.rgb, out, boxes)
    notes = [f"face {len(faces) + i + 1}: {f.reason}" for i, f in enumerate(fates)]
    notes += [f"face {i + 1}: left unchanged by {method}: masked" for i in left]
    masked = sum(f.kind == "masked" for f in fates)
    return Replaced(out, done.replaced, done.blurred + len(fates) - masked,
                    done.notes + tuple(notes), masked, len(left))


def _replace_fitted(engine, image: LoadedImage, faces: list[FaceAnalysis], method: str,
                    seed: int, context: str, privacy: str | None) -> Replaced:
    maker = REGISTRY.maker(REGISTRY.resolve(method).key)
    if privacy is None or privacy == DEFAULT_PRIVACY:  # a maker may not know of presets
        return maker.replace(engine, image, faces, seed, context)
    return maker.replace(engine, image, faces, seed, context, privacy=privacy)


def anonymize_rgb(engine, rgb: np.ndarray, method: str, seed: int, context: str = "keep",
                  policy: str = UNFITTED_POLICIES[0]) -> Replaced:
    """One photo's pixels, searched and replaced as ``studio anonymize`` does it, apart
    from files (the recall benchmark and its test)."""
    image = LoadedImage(np.ascontiguousarray(rgb), "<array>", "RGB", False)
    analysis = engine.analyze(image)
    return replace_faces(engine, image, analysis.faces, method, photo_seed(seed, image.rgb),
                         context, analysis.unfitted, policy)
