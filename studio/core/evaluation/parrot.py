"""The parrot attacker's gallery: each person's gallery photo anonymised by the method under
attack, as an attacker who knows the method would make it.

Attack I matches outputs against the originals; the parrot attack matches them against
originals passed through the same method with fresh seeds, so that a method leaving a
trace of the person in every output (k-Same, Fantômas) is found out. The gallery is
attack I's: the first photo of each person with a face. Seeded methods (the surrogates)
get a new output made with another seed; deterministic ones (blur, pixelation, masks)
give the gallery photo's own output again, which the run already holds.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from studio.core.analysis.images import LoadedImage
from studio.core.analysis.landmarks import largest_face
from studio.core.assets import sha256_of
from studio.core.evaluation.methods import Method
from studio.core.evaluation.observations import (
    Observation,
    ObservationCache,
    cache_key,
    make_output,
    models_fingerprint,
    observe_source,
)
from studio.core.metrics.attacks import gallery_rows
from studio.core.progress import Progress, Stop, never_stop, no_progress
from studio.core.surrogates.making import candidate_seed

#: Appended to a method's key in the observation cache: its parrot-gallery output.
SUFFIX = "@parrot"
#: The fresh seed's index (the evaluation's own outputs use index 0).
SEED_INDEX = 1


def seeded(methods: list[Method]) -> list[Method]:
    """The methods whose outputs change with the seed: the surrogates."""
    return [m for m in methods if m.seeded]


def observe_parrot(engine, image: LoadedImage, sha: str, methods: list[Method]
                   ) -> dict[str, Observation]:
    """The gallery photo anonymised by each seeded method with a fresh seed, analysed by
    both recognizers."""
    analyzer = engine.analyzer
    analyzer.load_second()
    face = largest_face(analyzer.analyze(image).faces)
    if face is None:
        return {}
    seed = candidate_seed(sha, 0, SEED_INDEX)
    made = [make_output(engine, m, image, face, seed) for m in methods]
    return {m.key: Observation.of(largest_face(a.faces))
            for m, a in zip(methods, analyzer.analyze_many(made), strict=True)}


def parrot_gallery(run, engine, cache: ObservationCache | None = None, workers: int = 2,
                   progress: Progress | None = None, stop: Stop | None = None
                   ) -> dict[tuple[str, str, str], Observation]:
    """(data set, source, method) -> the gallery photo's fresh-seed output, for every data
    set with known identities and every seeded method. Cached like the observations;
    ``engine`` may be a function that loads the models, called only if needed."""
    progress, stop = progress or no_progress, stop or never_stop
    methods = seeded(run.methods)
    known = {d.name: d for d in run.datasets if d.identities_known}
    if not methods or not known:
        return {}
    cache = cache or ObservationCache()
    fingerprint = models_fingerprint()
    anchor = methods[0].key
    wanted = []  # (dataset, source)
    for name, dataset in known.items():
        rows = [m for m in run.measurements if m.dataset == name and m.method == anchor]
        by_name = {s.name: s for s in dataset.sources}
        ids = np.array([r.identity for r in rows])
        wanted += [(name, by_name[rows[i].source]) for i in gallery_rows(ids)]
    out: dict[tuple[str, str, str], Observation] = {}
    models = None

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        planned = []
        for name, source in wanted:
            sha = sha256_of(source.path)
            keys = {m.key: cache_key(fingerprint, sha, m.key + SUFFIX) for m in methods}
            have = cache.get_many(list(keys.values()))
            if all(k in have for k in keys.values()):
                planned.append((name, source, sha, {m: have[k] for m, k in keys.items()}))
                continue
            if models is None:
                models = engine() if callable(engine) else engine
                if any(m.rendered for m in methods):
                    models.load_3d()
            planned.append((name, source, sha, pool.submit(
                observe_source, observe_parrot, models, source, sha, methods, stop)))
        for done, (name, source, sha, obs) in enumerate(planned, 1):
            if not isinstance(obs, dict):
                obs = obs.result()
                if isinstance(obs, dict) and obs:
                    cache.put_many({cache_key(fingerprint, sha, k + SUFFIX): o
                                    for k, o in obs.items()})
                elif isinstance(obs, str) and obs != "stopped":
                    run.problems.append(f"parrot gallery: {obs}")
            if isinstance(obs, dict):
                out.update({(name, source.name, k): o for k, o in obs.items()})
            progress(done, len(planned), "parrot gallery")
    return out
