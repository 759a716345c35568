"""Making a face's surrogates of every method, the same way for every caller.

``studio batch``, ``studio evaluate``, the curation window and the export all draw their
surrogates through here, so a seed means the same face everywhere and every surrogate
leaves the studio as the same kind of file: a fresh PNG at ``EXPORT_SIZE`` with no metadata.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.errors import StudioError
from studio.core.metrics.comparison import Comparison
from studio.core.surrogates.registry import REGISTRY

if TYPE_CHECKING:
    from studio.core.surrogates.incontext import ContextRequest

__all__ = ["EXPORT_SIZE", "CandidateMaker", "batch_engine", "candidate_metrics", "candidate_seed",
           "check_methods", "gan_draws", "in_context_photos", "png_bytes", "save_png",
           "surrogate_images"]

#: The size every exported surrogate has: GAN faces are upscaled to it, 3D renders drawn at it.
EXPORT_SIZE = 256


def png_bytes(rgb: np.ndarray, size: int | None = EXPORT_SIZE) -> bytes:
    """A fresh PNG with no metadata (nothing of the original travels with it), resized to
    ``size`` pixels square unless ``size`` is None."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    if size is not None and img.size != (size, size):
        img = img.resize((size, size), Image.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def save_png(rgb: np.ndarray, path: str | Path) -> Path:
    """Write one surrogate as ``png_bytes`` would make it; the path's suffix becomes .png."""
    out = Path(path).with_suffix(".png")
    out.write_bytes(png_bytes(rgb))
    return out


def candidate_metrics(original: FaceAnalysis, comparison: Comparison) -> dict:
    """What the curation view filters on: identity by both recognizers (dlib's distance,
    the second's ``arcface_similarity``) and expression kept."""
    seen = comparison.surrogate
    if seen is None:
        return {"found": False, "distance": None, "arcface_similarity": None,
                "smile_kept": None}
    a, b = original.attributes, seen.attributes
    return {"found": True, "distance": comparison.distance,
            "arcface_similarity": comparison.similarity2, "smile_kept": comparison.smile_kept,
            "joy": b.joy, "yaw": b.yaw, "pitch": b.pitch, "roll": b.roll,
            "d_joy": b.joy - a.joy, "d_yaw": b.yaw - a.yaw, "d_pitch": b.pitch - a.pitch,
            "d_roll": b.roll - a.roll}


def candidate_seed(sha256: str, face_index: int, i: int) -> int:
    """Deterministic per face, so a resumed or repeated run makes the same candidates."""
    return (int(sha256[:8], 16) + 7919 * face_index + 104729 * i) % 1_000_000 + 1


def batch_engine(workers: int, min_face: float | None = None):
    """An engine with ``workers`` photos in flight: one landmarker each, and torch's threads
    shared out so that the workers do not oversubscribe the cores; faces are looked for
    down to ``min_face`` pixels (default: ``search_settings.MIN_FACE_DEFAULT``)."""
    import torch

    from studio.core.surrogates.engine import SurrogateEngine

    workers = max(1, workers)
    if workers > 1:
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // workers))
    engine = SurrogateEngine(staged=True, landmarkers=workers, min_face=min_face)
    engine.load_generation()
    return engine


def check_methods(methods: tuple[str, ...] | list[str]) -> None:
    """Refuse any method that is not a registered candidate method."""
    choices = REGISTRY.candidates()
    for m in methods:
        if m not in choices:
            raise StudioError(f"unknown method {m!r}; use {', '.join(choices)}")


def in_context_photos(engine, image, face: FaceAnalysis, seeds: list[int],
                      others: list | None = None,
                      request: Callable[[int], ContextRequest] | None = None
                      ) -> list[np.ndarray]:
    """The whole photo with ``face`` replaced by each seed's identity (and ``others``, the
    photo's other faces, replaced too, so that no original face is left beside it; those
    found but not fitted, ``UnfittedFace``, are masked or blurred). ``request(seed)``: how
    (``InContextMethod.request``: the preset, context and refiner); default, the default
    preset's."""
    from studio.core.analysis.face_search import UnfittedFace
    from studio.core.surrogates.incontext import ContextRequest

    request = request or (lambda s: ContextRequest(seed=s))
    unfitted = [o for o in others or [] if isinstance(o, UnfittedFace)]
    faces = [face, *(o for o in others or [] if not isinstance(o, UnfittedFace))]
    return [engine.in_context(image, faces, request(s), unfitted=unfitted).image
            for s in seeds]


def gan_draws(engine, face: FaceAnalysis, seeds: list[int]) -> list:
    """A GAN surrogate per seed, each read back and drawn again until it is another person
    with the original's smile and gender (``gan_draws.draw_verified``), in at most
    ``engine.gan_draws`` draws."""
    from studio.core.surrogates.gan_draws import draw_verified

    return [draw_verified(engine.generator, engine.analyzer, face, s, draws=engine.gan_draws)
            for s in seeds]


def surrogate_images(engine, method: str, image, face: FaceAnalysis, seeds: list[int],
                     others: list[FaceAnalysis] | None = None) -> list[np.ndarray]:
    """A face's surrogates, one per identity seed, from its own estimate: a crop method's
    faces in their own frame, a method that replaces inside the photo cropped from the
    photo in the original's framing at EXPORT_SIZE."""
    check_methods([method])
    made = REGISTRY.maker(method).make(engine, image, face, seeds, others)
    if not REGISTRY[method].in_photo:
        return made
    from studio.core.analysis.framing import original_crop

    return [original_crop(rgb, face.landmarks, EXPORT_SIZE) for rgb in made]


class CandidateMaker:
    """Makes and measures candidates of every method for a face; the engine's models are
    loaded once, and a face's candidates are generated and measured as one batch."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def make(self, method: str, image, face: FaceAnalysis, seed: int) -> tuple[bytes, dict]:
        return self.make_many(method, image, face, [seed])[0]

    def make_many(self, method: str, image, face: FaceAnalysis, seeds: list[int],
                  others: list[FaceAnalysis] | None = None) -> list[tuple[bytes, dict]]:
        from studio.core.metrics.comparison import compare_many

        engine = self.engine
        check_methods([method])
        measured = REGISTRY.maker(method).measured(engine, image, face, seeds)
        if measured is not None:  # each draw was read back already
            rgbs, comparisons = measured
        else:
            rgbs = surrogate_images(engine, method, image, face, seeds, others)
            comparisons = compare_many(engine.analyzer, face, rgbs)
        return [(png_bytes(rgb, None), candidate_metrics(face, c))
                for rgb, c in zip(rgbs, comparisons, strict=True)]
