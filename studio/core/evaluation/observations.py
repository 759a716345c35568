"""What the face analysis sees on an original and on each method's output, and the
SQLite cache that keeps it by image sha256, method and model fingerprint."""

from __future__ import annotations

import functools
import hashlib
import json
import math
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.attributes import NAMES
from studio.core.analysis.expression7 import gray_crop
from studio.core.analysis.images import LoadedImage, load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import MODELS_DIR, sha256_of, third_party_file, user_cache_dir
from studio.core.errors import StudioError
from studio.core.evaluation.methods import Method
from studio.core.evaluation.realism import method_crop, realism_features, to_realism_size
from studio.core.surrogates.making import candidate_seed
from studio.core.surrogates.registry import REGISTRY

#: Bump when the way an observation is made changes: cached ones are then made again.
#: 3: every observation carries the second recognizer's descriptor too (issue 28).
CACHE_VERSION = 3


@dataclass(frozen=True)
class Observation:
    """What the face analysis saw on one image; NaN where it saw no face."""

    found: bool
    joy: float = math.nan
    p_male: float = math.nan
    yaw: float = math.nan
    pitch: float = math.nan
    roll: float = math.nan
    descriptor: np.ndarray | None = field(default=None, repr=False)
    #: The second recognizer's unit descriptor (analysis.recognizer), taken where dlib's is
    descriptor2: np.ndarray | None = field(default=None, repr=False)
    #: The independent 7-class judge's probabilities (analysis.expression7.CLASSES)
    expression7: tuple[float, ...] | None = None
    #: Realism features of the face at the common realism size (evaluation.realism), for
    #: the original and the surrogates: the reals and what is compared with them
    realism: dict | None = field(default=None, repr=False)

    @property
    def smiling(self) -> bool | None:
        return None if not self.found else self.joy >= 0.5

    @property
    def expression(self) -> int | None:
        """The 7-class judge's verdict (an index into CLASSES)."""
        return None if self.expression7 is None else int(np.argmax(self.expression7))

    @classmethod
    def of(cls, face: FaceAnalysis | None, descriptor: np.ndarray | None = None,
           descriptor2: np.ndarray | None = None) -> Observation:
        """``descriptor``, ``descriptor2``: taken elsewhere (an aligned output's, at the
        original's landmarks); else the face's own."""
        if face is None:
            return cls(False, descriptor=descriptor, descriptor2=descriptor2)
        a = face.attributes
        desc = descriptor if descriptor is not None else face.descriptor
        desc2 = descriptor2 if descriptor2 is not None else face.descriptor2
        return cls(True, a.joy, a.p_male, a.yaw, a.pitch, a.roll, desc, desc2)

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in ("found", *NAMES)}
        d = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
        for key in ("descriptor", "descriptor2"):
            value = getattr(self, key)
            d[key] = None if value is None else value.tolist()
        d["expression7"] = None if self.expression7 is None else list(self.expression7)
        d["realism"] = self.realism
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Observation:
        d = json.loads(text)
        desc = {k: d.pop(k, None) for k in ("descriptor", "descriptor2")}
        judged, real = d.pop("expression7", None), d.pop("realism", None)
        values = {k: (math.nan if v is None else v) for k, v in d.items()}
        return cls(**{k: None if v is None else np.asarray(v, np.float32)
                      for k, v in desc.items()},
                   expression7=None if judged is None else tuple(judged), realism=real,
                   **values)


class ObservationCache:
    """SQLite, written from one thread only; survives runs and output folders."""

    def __init__(self, path: Path | None = None) -> None:
        path = path or user_cache_dir() / "evaluation" / "observations.sqlite"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS obs (key TEXT PRIMARY KEY, json TEXT)")

    def get_many(self, keys: list[str]) -> dict[str, Observation]:
        marks = ",".join("?" * len(keys))
        rows = self.db.execute(f"SELECT key, json FROM obs WHERE key IN ({marks})", keys)
        return {k: Observation.from_json(j) for k, j in rows}

    def put_many(self, items: dict[str, Observation]) -> None:
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO obs VALUES (?, ?)",
                                [(k, o.to_json()) for k, o in items.items()])

    def close(self) -> None:
        self.db.close()


@dataclass(frozen=True)
class Fingerprints:
    """Per kind of model a method needs, a digest of the model files its observations
    depend on: the analysis calibration for all, plus the default generator for the
    methods that need it and the morphable model and the refiner for the rendered ones. A
    new generator then re-measures the GAN rows only, not every baseline of every data
    set."""

    digests: dict[str, str]  # "analysis", NEEDS_GENERATOR, "rendered"

    def of(self, method: str) -> str:
        from studio.core.surrogates.registry import NEEDS_GENERATOR, REGISTRY

        if method not in REGISTRY:  # the original
            return self.digests["analysis"]
        spec = REGISTRY[method]
        if NEEDS_GENERATOR in spec.needs:
            return self.digests[NEEDS_GENERATOR]
        return self.digests["rendered" if spec.rendered else "analysis"]


def models_fingerprint() -> Fingerprints:
    """The fingerprints of the models as they are now on disk."""
    from studio.core.analysis.recognizer import (
        CALIBRATION_FILE,
        MODEL_FILE,
        same_person_threshold,
    )
    from studio.core.generator.choices import DEFAULT
    from studio.core.surrogates.gan_draws import RULE
    from studio.core.surrogates.registry import NEEDS_GENERATOR

    # Every observation holds the second recognizer's descriptor, and the read-back of the
    # surrogates answers to its threshold: a new file or calibration measures all anew. A
    # missing or corrupt file stops here, naming it and `make models`.
    same_person_threshold()  # the calibration, read (ModelFileError where it cannot be)
    second = sha256_of(third_party_file(MODEL_FILE)) + sha256_of(CALIBRATION_FILE)

    def digest(paths: list[Path], rule: str = "") -> str:
        h = hashlib.sha256(f"v{CACHE_VERSION}{rule}{second}".encode())
        for path in [MODELS_DIR / "analysis_calibration.json", *sorted(paths)]:
            h.update(sha256_of(path).encode())
        return h.hexdigest()[:16]

    # The rendered methods draw with the morphable model and refine with the refiner: new
    # refiner weights re-measure them (they were missing here, so a retrained refiner was
    # measured only where a drawing revision was bumped with it).
    rendered = [path for folder in ("morphable", "refiner")
                for path in (MODELS_DIR / folder).glob("*.safetensors")]
    return Fingerprints({"analysis": digest([]), NEEDS_GENERATOR: digest([DEFAULT.path], RULE),
                         "rendered": digest(rendered)})


def cache_key(fingerprints: Fingerprints, sha: str, method: str) -> str:
    """``method`` is a method's key, perhaps with a suffix (the parrot gallery's); the
    fingerprint of the models it uses and its drawing revision (the registry's) are part
    of the key."""
    from studio.core.surrogates.registry import REGISTRY

    key = method.split("@")[0]
    revision = REGISTRY[key].revision if key in REGISTRY else None
    tag = f"{method}#r{revision}" if revision is not None else method
    return f"{fingerprints.of(key)}:{sha}:{tag}"


def observe(engine, image: LoadedImage, sha: str, methods: list[Method]
            ) -> dict[str, Observation]:
    """The original and every method's output, analysed by both recognizers. Runs in
    worker threads."""
    analyzer = engine.analyzer
    second = analyzer.load_second()  # every face is described by both (issue 28)
    face = largest_face(analyzer.analyze(image).faces)
    original = Observation.of(face)
    out = {"original": original}
    if face is None:
        return out
    from studio.core.analysis.identity import identity_chip
    from studio.core.analysis.recognizer import aligned_chip, five_points

    seed = candidate_seed(sha, 0, 0)
    made = [(m, make_output(engine, m, image, face, seed)) for m in methods
            if m.key != "original"]
    surrogates = [(m, rgb) for m, rgb in made if not m.aligned]
    naive = [(m, rgb) for m, rgb in made if m.aligned]
    # The judge sees each image cropped at a face box: the original's and the aligned
    # outputs' at the original's, a surrogate's at its own face (or whole, without one).
    crops = {"original": gray_crop(image.rgb, face.box)}
    for (m, rgb), a in zip(surrogates, analyzer.analyze_many([rgb for _, rgb in surrogates]),
                           strict=True):
        seen = largest_face(a.faces)
        out[m.key] = Observation.of(seen)
        crops[m.key] = gray_crop(rgb, seen.box if seen is not None else None)
    if naive:
        analyses = analyzer.analyze_many([rgb for _, rgb in naive], identity=False)
        chips = np.stack([identity_chip(rgb, face.landmarks) for _, rgb in naive])
        descriptors = analyzer.identity.descriptors_of_chips(chips)
        points = five_points(face.landmarks)
        descriptors2 = second.descriptors_of_chips(
            np.stack([aligned_chip(rgb, points) for _, rgb in naive]))
        for (m, rgb), a, d, d2 in zip(naive, analyses, descriptors, descriptors2, strict=True):
            out[m.key] = Observation.of(largest_face(a.faces), d, d2)
            crops[m.key] = gray_crop(rgb, face.box)
    judged = expression_judge().probabilities(np.stack(list(crops.values())))
    for key, p in zip(crops, judged, strict=True):
        out[key] = replace(out[key], expression7=tuple(float(x) for x in p))
    # Realism: the original's face and each surrogate at one size and framing.
    faces = {"original": method_crop(engine, "original", image, face, seed)}
    faces |= {m.key: to_realism_size(rgb) for m, rgb in surrogates}
    rows = realism_features(np.stack(list(faces.values()))).rows()
    for key, row in zip(faces, rows, strict=True):
        out[key] = replace(out[key], realism=row)
    return out


def observe_source(observer, models, source, sha: str, methods: list[Method],
                   stop) -> dict[str, Observation] | str:
    """``observer(models, image, sha, methods)`` on one source, in a worker thread: its
    observations, "stopped" once ``stop()`` is true, or the message of an unreadable file."""
    if stop():
        return "stopped"
    try:
        return observer(models, load_image(source.path), sha, methods)
    except StudioError as exc:
        return str(exc)


@functools.cache
def expression_judge():
    """The 7-class judge, loaded once and shared by the worker threads (inference only)."""
    from studio.core.analysis.expression7 import ExpressionJudge

    return ExpressionJudge()


def make_output(engine, method: Method, image: LoadedImage, face: FaceAnalysis,
                seed: int) -> np.ndarray:
    """The method's output for ``face``: its face crop, or the whole photo for a method
    that replaces inside it."""
    return REGISTRY.maker(method.key).make(engine, image, face, [seed])[0]
