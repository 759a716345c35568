"""``studio evaluate``: surrogates and the naive methods measured on the same faces.

Every source face is de-identified by each method, and the output is analysed by the same
face analysis as the original: what a crowd would see (expression, pose, gender) and what
an attacker could match (the dlib descriptor). Observations are cached by the image's
sha256, the method and the models' fingerprint, so a re-run only does new work.

Aligned methods (blur, pixelation, masks) leave the face where it was. Their descriptor is
taken at the original's landmarks: an attacker knows where the face was, and must not be
stopped by a landmarker that fails on a blurred face.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.images import LoadedImage, load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import MODELS_DIR, sha256_of, user_cache_dir
from studio.core.errors import StudioError
from studio.core.evaluation import baselines
from studio.core.workspace.batch import candidate_seed, list_images, surrogate_images

#: Bump when the way an observation is made changes: cached ones are then made again.
CACHE_VERSION = 1


@dataclass(frozen=True)
class Method:
    key: str
    family: str
    label: str
    aligned: bool  # the output's pixels line up with the original's
    light: bool = False  # the lighter of a naive method's two strengths


METHODS: dict[str, Method] = {m.key: m for m in (
    Method("original", "original", "original (reference)", True),
    Method("gan", "gan", "GAN surrogate", False),
    Method("3d", "3d", "3D surrogate", False),
    Method("blur-light", "blur", "blur, σ 5% of face width", True, light=True),
    Method("blur-strong", "blur", "blur, σ 12% of face width", True),
    Method("pixelate-light", "pixelate", "pixelation, 16 blocks across", True, light=True),
    Method("pixelate-strong", "pixelate", "pixelation, 8 blocks across", True),
    Method("mask-eyes", "mask", "black bar over the eyes", True, light=True),
    Method("mask-face", "mask", "black mask over the face", True),
)}
FAMILIES = ("gan", "3d", "blur", "pixelate", "mask")


def methods_for(families: Iterable[str]) -> list[Method]:
    """The methods of the named families, after the original (always the reference)."""
    families = [f.strip() for f in families if f.strip()]
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown:
        raise StudioError(f"unknown method {', '.join(unknown)}; use {', '.join(FAMILIES)}")
    return [m for m in METHODS.values() if m.family == "original" or m.family in families]


def naive_output(method: Method, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
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


# -- sources ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    path: Path
    name: str  # shown in the per-face CSV: relative to the data folder
    identity: str
    truth: dict[str, float] = field(default_factory=dict)  # smile, yaw, pitch, roll, male


@dataclass(frozen=True)
class Dataset:
    name: str
    kind: str  # genki4k-test | celeba-id | utkface-holdout | folder
    sources: list[Source]
    identities_known: bool  # False: every image is taken to be its own person


def discover(folder: str | Path, limit: int | None = None) -> Dataset:
    """The face sets of ``../shared/data`` by their layout, or any folder of photos.

    GENKI-4K gives its test split with smile and pose labels, UTKFace its hold-out split
    with gender, celeba-id its identities. In another folder, photos in sub-folders belong
    to the person the sub-folder is named after; loose photos are each their own person.
    """
    root = Path(folder)
    if not root.is_dir():
        raise StudioError(f"{root} is not a folder")
    if (root / "labels.txt").is_file() and (root / "test_split.txt").is_file():
        dataset = _genki(root)
    elif (root / "identity.txt").is_file():
        dataset = _celeba(root)
    elif root.name == "utkface" and (root / "images").is_dir():
        dataset = _utkface(root)
    else:
        dataset = _folder(root)
    if limit is not None and limit < len(dataset.sources):
        dataset = Dataset(dataset.name, dataset.kind, spread(dataset.sources, limit),
                          dataset.identities_known)
    return dataset


def _genki(root: Path) -> Dataset:
    from studio.core.datasets import genki

    return Dataset("GENKI-4K test", "genki4k-test", [
        Source(it.path, f"{root.name}/{it.path.name}", it.stem,
               {"smile": it.smile, "yaw": it.yaw, "pitch": it.pitch, "roll": it.roll})
        for it in genki("test", root)], False)


def _celeba(root: Path) -> Dataset:
    from studio.core.datasets import celeba_id

    return Dataset("celeba-id", "celeba-id", [
        Source(it.path, f"{root.name}/{it.path.name}", str(it.identity))
        for it in celeba_id(root)], True)


def _utkface(root: Path) -> Dataset:
    from studio.core.datasets import utk_split, utkface

    return Dataset("UTKFace hold-out", "utkface-holdout", [
        Source(it.path, f"{root.name}/{it.path.name}", it.path.name, {"male": float(it.male)})
        for it in utk_split(utkface(root), "test")], False)


def _folder(root: Path) -> Dataset:
    paths = list_images(root)
    if not paths:
        raise StudioError(f"{root} holds no photos the studio can read")
    sources = [Source(p, str(p.relative_to(root)),
                      p.parent.name if p.parent != root else str(p.relative_to(root)))
               for p in paths]
    return Dataset(root.name, "folder", sources, any(p.parent != root for p in paths))


def spread(sources: list[Source], limit: int) -> list[Source]:
    """At most ``limit`` sources spread over the whole list, whole identities kept
    together (the attacks need every image of a person)."""
    by_identity: dict[str, list[Source]] = {}
    for s in sources:
        by_identity.setdefault(s.identity, []).append(s)
    step = max(1.0, len(sources) / max(limit, 1))
    picked: list[Source] = []
    taken, next_at = 0, 0.0
    for group in by_identity.values():
        if taken >= next_at and len(picked) + len(group) <= limit:
            picked.extend(group)
            next_at += step * len(group)
        taken += len(group)
    return picked


# -- observations ------------------------------------------------------------------------


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

    @property
    def smiling(self) -> bool | None:
        return None if not self.found else self.joy >= 0.5

    @classmethod
    def of(cls, face: FaceAnalysis | None, descriptor: np.ndarray | None = None
           ) -> Observation:
        if face is None:
            return cls(False, descriptor=descriptor)
        a = face.attributes
        desc = descriptor if descriptor is not None else face.descriptor
        return cls(True, a.joy, a.p_male, a.yaw, a.pitch, a.roll, desc)

    def to_json(self) -> str:
        d = {k: getattr(self, k) for k in ("found", "joy", "p_male", "yaw", "pitch", "roll")}
        d = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
        d["descriptor"] = None if self.descriptor is None else self.descriptor.tolist()
        return json.dumps(d)

    @classmethod
    def from_json(cls, text: str) -> Observation:
        d = json.loads(text)
        desc = d.pop("descriptor")
        values = {k: (math.nan if v is None else v) for k, v in d.items()}
        return cls(descriptor=None if desc is None else np.asarray(desc, np.float32), **values)


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


def models_fingerprint() -> str:
    """Changes whenever a model an observation depends on changes."""
    digest = hashlib.sha256(f"v{CACHE_VERSION}".encode())
    for path in sorted([MODELS_DIR / "analysis_calibration.json",
                        *(MODELS_DIR / "generator").glob("*.safetensors"),
                        *(MODELS_DIR / "morphable").glob("*.safetensors")]):
        digest.update(sha256_of(path).encode())
    return digest.hexdigest()[:16]


def cache_key(fingerprint: str, sha: str, method: str) -> str:
    return f"{fingerprint}:{sha}:{method}"


def observe(engine, image: LoadedImage, sha: str, methods: list[Method]
            ) -> dict[str, Observation]:
    """The original and every method's output, analysed. Runs in worker threads."""
    analyzer = engine.analyzer
    face = largest_face(analyzer.analyze(image).faces)
    original = Observation.of(face)
    out = {"original": original}
    if face is None:
        return out
    from studio.core.analysis.identity import identity_chip

    seed = candidate_seed(sha, 0, 0)
    made = [(m, make_output(engine, m, image, face, seed)) for m in methods
            if m.key != "original"]
    surrogates = [(m, rgb) for m, rgb in made if not m.aligned]
    naive = [(m, rgb) for m, rgb in made if m.aligned]
    for (m, _), a in zip(surrogates, analyzer.analyze_many([rgb for _, rgb in surrogates]),
                         strict=True):
        out[m.key] = Observation.of(largest_face(a.faces))
    if naive:
        analyses = analyzer.analyze_many([rgb for _, rgb in naive], identity=False)
        chips = np.stack([identity_chip(rgb, face.landmarks) for _, rgb in naive])
        descriptors = analyzer.identity.descriptors_of_chips(chips)
        for (m, _), a, d in zip(naive, analyses, descriptors, strict=True):
            out[m.key] = Observation.of(largest_face(a.faces), d)
    return out


def make_output(engine, method: Method, image: LoadedImage, face: FaceAnalysis,
                seed: int) -> np.ndarray:
    if method.family in ("gan", "3d"):
        return surrogate_images(engine, method.family, image, face, [seed])[0]
    return naive_output(method, image.rgb, face.landmarks)


# -- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    """One source face under one method."""

    dataset: str
    source: str
    identity: str
    method: str
    truth: dict[str, float]
    original: Observation
    output: Observation


@dataclass
class EvaluationRun:
    datasets: list[Dataset]
    methods: list[Method]
    measurements: list[Measurement] = field(default_factory=list)
    no_face: dict[str, int] = field(default_factory=dict)  # sources without a face
    problems: list[str] = field(default_factory=list)
    computed: int = 0  # sources analysed in this run (not from the cache)
    seconds: float = 0.0

    @property
    def faces_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 and self.computed else 0.0


def evaluate(datasets: list[Dataset], methods: list[Method], engine, workers: int = 2,
             cache: ObservationCache | None = None, progress: bool = True,
             on_progress: Callable[[int, int], None] | None = None,
             stop: Callable[[], bool] | None = None) -> EvaluationRun:
    """Observe every source under every method. ``engine`` is the models, or a function
    that loads them, called once the first face turns out not to be cached.
    ``on_progress(done, total)`` and ``stop`` serve a window; the cache is written from
    this thread, one source at a time."""
    cache = cache or ObservationCache()
    fingerprint = models_fingerprint()
    run = EvaluationRun(datasets, methods)
    jobs = [(d, s) for d in datasets for s in d.sources]
    bar = tqdm(total=len(jobs), desc="faces", unit="face", disable=not progress)
    t0 = time.perf_counter()
    keys = [m.key for m in methods]

    def models():
        nonlocal engine
        if callable(engine):
            engine = engine()
        return engine

    def compute(models, source: Source, sha: str) -> dict[str, Observation] | str:
        if stop is not None and stop():
            return "stopped"
        try:
            return observe(models, load_image(source.path), sha, methods)
        except StudioError as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        planned = []  # (dataset, source, sha, observations from the cache or a future)
        for dataset, source in jobs:
            try:
                sha = sha256_of(source.path)
            except OSError as exc:
                run.problems.append(f"{source.name}: cannot be read ({exc.strerror or exc})")
                continue
            cached = _cached(cache, fingerprint, sha, keys)
            planned.append((dataset, source, sha,
                            cached if cached is not None
                            else pool.submit(compute, models(), source, sha)))
        for done, (dataset, source, sha, obs) in enumerate(planned, 1):
            if not isinstance(obs, dict):
                obs = obs.result()
                if isinstance(obs, dict):
                    cache.put_many({cache_key(fingerprint, sha, k): o for k, o in obs.items()})
                    run.computed += 1
                elif obs != "stopped":
                    run.problems.append(obs)
            if isinstance(obs, dict):
                _record(run, dataset, source, obs)
            bar.update(1)
            run.seconds = time.perf_counter() - t0
            if on_progress is not None:
                on_progress(done, len(planned))
    bar.close()
    run.seconds = time.perf_counter() - t0
    return run


def _cached(cache: ObservationCache, fingerprint: str, sha: str, keys: list[str]
            ) -> dict[str, Observation] | None:
    """Every observation a source needs, or None; a face-less original needs no more."""
    have = cache.get_many([cache_key(fingerprint, sha, k) for k in keys])
    obs = {k: have[cache_key(fingerprint, sha, k)] for k in keys
           if cache_key(fingerprint, sha, k) in have}
    original = obs.get("original")
    if original is not None and (len(obs) == len(keys) or not original.found):
        return obs
    return None


def _record(run: EvaluationRun, dataset: Dataset, source: Source,
            obs: dict[str, Observation]) -> None:
    original = obs["original"]
    if not original.found:
        run.no_face[dataset.name] = run.no_face.get(dataset.name, 0) + 1
        return
    for m in run.methods:
        output = original if m.key == "original" else obs[m.key]
        run.measurements.append(Measurement(dataset.name, source.name, source.identity, m.key,
                                            source.truth, original, output))
