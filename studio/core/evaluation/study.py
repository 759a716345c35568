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

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from studio.core.assets import sha256_of
from studio.core.evaluation.methods import Method
from studio.core.evaluation.observations import (
    Fingerprints,
    Observation,
    ObservationCache,
    cache_key,
    models_fingerprint,
    observe,
    observe_source,
)
from studio.core.evaluation.sources import Dataset, Source
from studio.core.progress import Progress, Stop, never_stop, no_progress


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
             cache: ObservationCache | None = None, progress: Progress | None = None,
             stop: Stop | None = None) -> EvaluationRun:
    """Observe every source under every method. ``engine`` is the models, or a function
    that loads them, called once the first face turns out not to be cached. ``progress``
    counts faces; after ``stop()`` the faces not yet begun are skipped. The cache is
    written from this thread, one source at a time."""
    progress, stop = progress or no_progress, stop or never_stop
    cache = cache or ObservationCache()
    fingerprint = models_fingerprint()
    run = EvaluationRun(datasets, methods)
    jobs = [(d, s) for d in datasets for s in d.sources]
    t0 = time.perf_counter()
    keys = [m.key for m in methods]

    def models():
        nonlocal engine
        if callable(engine):
            engine = engine()
        return engine

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
                            else pool.submit(observe_source, observe, models(), source,
                                             sha, methods, stop)))
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
            run.seconds = time.perf_counter() - t0
            progress(done, len(planned), "faces")
    run.seconds = time.perf_counter() - t0
    return run


def _cached(cache: ObservationCache, fingerprint: Fingerprints, sha: str, keys: list[str]
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
