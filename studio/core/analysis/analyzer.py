"""The face analysis the whole studio stands on: landmarks, attributes, identity."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from studio.core.analysis.attributes import Attributes
from studio.core.analysis.calibration import Calibration, load_calibration
from studio.core.analysis.detector import FaceDetector
from studio.core.analysis.face_search import UnfittedFace, find_faces
from studio.core.analysis.images import LoadedImage, load_image
from studio.core.analysis.landmarks import (
    BLENDSHAPE_NAMES,
    MAX_FACES,
    DetectedFace,
    Detection,
    FaceLandmarker,
    LandmarkerPool,
)
from studio.core.analysis.search_settings import MIN_FACE_DEFAULT

if TYPE_CHECKING:  # torch: loaded only where surrogates are checked
    from studio.core.analysis.recognizer import SecondRecognizer


@dataclass(frozen=True)
class FaceAnalysis:
    """Everything known about one face in one image."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray = field(repr=False)  # (478, 3) pixels
    blendshapes: np.ndarray = field(repr=False)  # (52,)
    transform: np.ndarray = field(repr=False)  # (4, 4)
    attributes: Attributes
    descriptor: np.ndarray | None = field(default=None, repr=False)  # (128,) dlib's
    #: (192,) the second recognizer's (``analysis.recognizer``): None until it is loaded
    descriptor2: np.ndarray | None = field(default=None, repr=False)

    def top_blendshapes(self, k: int = 5) -> list[tuple[str, float]]:
        order = np.argsort(-self.blendshapes)[:k]
        return [(BLENDSHAPE_NAMES[i], float(self.blendshapes[i])) for i in order]

    def to_dict(self, landmarks: bool = False) -> dict:
        out: dict = {
            "box": [round(v, 1) for v in self.box],
            "attributes": self.attributes.to_dict(),
            "smiling": self.attributes.smiling,
            "top_blendshapes": {n: round(s, 4) for n, s in self.top_blendshapes()},
        }
        if self.descriptor is not None:
            out["descriptor"] = [round(float(v), 5) for v in self.descriptor]
        if landmarks:
            out["landmarks"] = np.round(self.landmarks, 2).tolist()
        return out


@dataclass(frozen=True)
class ImageAnalysis:
    source: str
    width: int
    height: int
    faces: list[FaceAnalysis]
    timings_ms: dict[str, float]
    #: What the user should know about how the image was read and searched (only the
    #: first frame of an animation, the face limit reached...): shown, never silent.
    notes: tuple[str, ...] = ()
    #: Faces the recall detector found where no landmarks could be fitted: they are
    #: blurred or masked, never left as they were (``surrogates.unfitted``).
    unfitted: tuple[UnfittedFace, ...] = ()

    @property
    def found(self) -> int:
        """Every face found: fitted and not."""
        return len(self.faces) + len(self.unfitted)


class FaceAnalyzer:
    """Loads the models once; ``analyze`` is safe to call from worker threads."""

    def __init__(self, identity: bool = True, gender: bool = True, max_faces: int = MAX_FACES,
                 landmarkers: int = 1, recall: bool = False,
                 min_face: float = MIN_FACE_DEFAULT) -> None:
        """``recall``: also run the recall detector (``analysis.detector``) and fit
        landmarks on every face it finds down to ``min_face`` pixels: what every command
        that replaces faces uses. Without it, only the landmarker's own search (held-out
        crops, training data)."""
        from studio.core.analysis.gender import GenderClassifier
        from studio.core.analysis.identity import IdentityEncoder

        self.calibration: Calibration = load_calibration()
        self.landmarker = (FaceLandmarker(max_faces=max_faces) if landmarkers <= 1 else
                           LandmarkerPool(landmarkers, max_faces=max_faces))
        self.gender = GenderClassifier() if gender else None
        self.identity = IdentityEncoder() if identity else None
        self.min_face = min_face
        self.detector = FaceDetector() if recall else None
        #: The second recognizer, loaded by ``load_second`` where surrogates are checked;
        #: once loaded, every face given a dlib descriptor gets its descriptor too.
        self.second: SecondRecognizer | None = None
        self._second_lock = threading.Lock()

    def load_second(self) -> SecondRecognizer:
        """The second recognizer, loaded once (thread-safe). A missing or corrupt file is a
        ModelFileError naming it and ``make models``: never caught, so nothing falls back
        to dlib alone."""
        with self._second_lock:
            if self.second is None:
                from studio.core.analysis.recognizer import SecondRecognizer

                self.second = SecondRecognizer()
            return self.second

    def describe2(self, rgb: np.ndarray, faces: list[FaceAnalysis]) -> list[FaceAnalysis]:
        """``faces`` of ``rgb`` with the second recognizer's descriptors where they lack
        one, in one batch (loading the recognizer if needed)."""
        todo = [i for i, f in enumerate(faces) if f.descriptor2 is None]
        if not todo:
            return list(faces)
        descs = self.load_second().descriptors(rgb, [faces[i].landmarks for i in todo])
        out = list(faces)
        for i, d in zip(todo, descs, strict=True):
            out[i] = replace(out[i], descriptor2=d)
        return out

    def close(self) -> None:
        self.landmarker.close()

    def __enter__(self) -> FaceAnalyzer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def attributes(self, rgb: np.ndarray, face: DetectedFace, gender: bool = True
                   ) -> Attributes:
        joy = self.calibration.joy(face.blendshapes)
        p_male = (self.gender.p_male(rgb, face.landmarks) if self.gender and gender
                  else float("nan"))
        yaw, pitch, roll = self.calibration.pose(face.transform)
        return Attributes(joy, p_male, float(yaw), float(pitch), float(roll))

    def analyze(self, image: np.ndarray | LoadedImage, source: str = "<array>",
                recall: bool = True, second: bool = True) -> ImageAnalysis:
        """Every face of an image. ``recall=False`` skips the recall detector even where it
        is loaded: for reading back a surrogate the studio made, where the faces' places
        are known and a full search of a large photo would only cost time.
        ``second=False`` leaves the second descriptors out even where the recognizer is
        loaded: a read-back describes only the faces it matched (``describe2``)."""
        notes: tuple[str, ...] = ()
        if isinstance(image, LoadedImage):
            rgb, source = image.rgb, image.source
            notes = (image.note,) if image.note else ()
        else:
            rgb = np.ascontiguousarray(image, dtype=np.uint8)
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        detection, unfitted = self._search(rgb, recall)
        detected = detection.faces
        t1 = time.perf_counter()
        attrs = [self.attributes(rgb, f) for f in detected]
        t2 = time.perf_counter()
        descriptors = [self.identity.descriptor(rgb, f.landmarks) if self.identity else None
                       for f in detected]
        t3 = time.perf_counter()
        faces = [FaceAnalysis(f.box, f.landmarks, f.blendshapes, f.transform, a, d)
                 for f, a, d in zip(detected, attrs, descriptors, strict=True)]
        if second and self.identity is not None and self.second is not None:
            faces = self.describe2(rgb, faces)
            timings["identity2"] = (time.perf_counter() - t3) * 1e3
        t4 = time.perf_counter()
        timings.update(detect=(t1 - t0) * 1e3, attributes=(t2 - t1) * 1e3,
                       identity=(t3 - t2) * 1e3, analysis=(t4 - t0) * 1e3)
        return ImageAnalysis(source, rgb.shape[1], rgb.shape[0], faces, timings,
                             notes + detection.notes, tuple(unfitted))

    def _search(self, rgb: np.ndarray, recall: bool = True
                ) -> tuple[Detection, list[UnfittedFace]]:
        if self.detector is None or not recall:
            return self.landmarker.find(rgb), []
        return find_faces(self.landmarker, self.detector, rgb, self.min_face)

    def analyze_many(self, images: list[np.ndarray], gender: bool = True,
                     identity: bool = True) -> list[ImageAnalysis]:
        """Several images at once (a batch's candidates): the identity network runs once
        over all their faces, which is what costs most per face. ``gender=False`` leaves
        P(male) as NaN and ``identity=False`` the descriptors None, where nobody reads them."""
        from studio.core.analysis.identity import identity_chip

        found = []
        for rgb in images:
            rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
            detection, unfitted = self._search(rgb, recall=False)  # made faces, read back
            found.append((rgb, (detection, unfitted),
                          [self.attributes(rgb, f, gender) for f in detection.faces]))
        describe = identity and self.identity is not None
        chips = ([identity_chip(rgb, f.landmarks) for rgb, (det, _), _ in found
                  for f in det.faces] if describe else [])
        descs = iter(self.identity.descriptors_of_chips(np.stack(chips)) if chips else [])
        descs2 = iter(self._second_of_chips(found) if describe and self.second else [])
        out = []
        for rgb, (detection, unfitted), attrs in found:
            faces = [FaceAnalysis(f.box, f.landmarks, f.blendshapes, f.transform, a,
                                  next(descs, None), next(descs2, None))
                     for f, a in zip(detection.faces, attrs, strict=True)]
            out.append(ImageAnalysis("<array>", rgb.shape[1], rgb.shape[0], faces, {},
                                     detection.notes, tuple(unfitted)))
        return out

    def _second_of_chips(self, found: list) -> np.ndarray:
        """The second descriptors of every face of ``analyze_many``'s images, one batch."""
        from studio.core.analysis.recognizer import aligned_chip, five_points

        chips = [aligned_chip(rgb, five_points(f.landmarks)) for rgb, (det, _), _ in found
                 for f in det.faces]
        return self.second.descriptors_of_chips(np.stack(chips)) if chips else np.zeros(0)

    def describe(self, rgb: np.ndarray, analysis: ImageAnalysis) -> ImageAnalysis:
        """The same analysis with identity descriptors for faces that have none (dlib's,
        and the second recognizer's where it is loaded)."""
        if self.identity is None:
            raise RuntimeError("the identity encoder is not loaded")
        faces = [f if f.descriptor is not None else
                 replace(f, descriptor=self.identity.descriptor(rgb, f.landmarks))
                 for f in analysis.faces]
        if self.second is not None:
            faces = self.describe2(rgb, faces)
        return replace(analysis, faces=faces)

    def analyze_path(self, path: str | os.PathLike[str]) -> ImageAnalysis:
        t0 = time.perf_counter()
        loaded = load_image(Path(path))
        load_ms = (time.perf_counter() - t0) * 1e3
        result = self.analyze(loaded)
        result.timings_ms["load"] = load_ms
        result.timings_ms["total"] = load_ms + result.timings_ms["analysis"]
        return result
