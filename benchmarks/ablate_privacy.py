"""What gives the person away, measured (issue 28, part 4): the in-context surrogate with
one privacy switch changed at a time, and the presets, against the parrot attack on
celeba-id's test identities and the second recognizer on held-out faces.

Per variant (``VARIANTS``):

- **parrot rank-1, other photos**: the first 90 celeba-id test people with three photos
  or more (``--people``); each one's first photo anonymised with a fresh seed forms the
  attacker's gallery (``--distractors`` adds single-photo test people to it); their next
  two photos, anonymised as ``studio anonymize --seed 5`` would, are ranked against it by
  dlib's descriptor and by the second recognizer's (``metrics.attacks``). Chance is
  1 / gallery people; the 95% Wilson interval is printed as multiples of chance. Every
  variant uses the same photos and seeds, so each is also compared with the default probe
  by probe: the probes only the default finds, those only the variant finds, and the
  exact sign test on them (McNemar), which tells a change from noise better than two
  overlapping intervals.
- **held-out**: GENKI-4K test and UTKFace hold-out faces (``evaluation.held_out``, none
  in the morphable model's build). The first draw's share another person to the second
  recognizer (what the switch itself does, before the read-back redraws), then the
  shipped output's shares by the second, by dlib and by both, faces blurred after six
  draws, and smile agreement.

Besides the request's switches, a variant may set a knob (``KNOBS``): what the default
carries from the original even with a fresh seed per photo, the push of every identity
away from the original's direction, the pull of its tone towards the original's, and
the photo's coarse light.

No training identity or image is used. Every variant's outputs are measured once and
cached under ``.cache/ablate_privacy/`` (keyed by the switches, the method's revision, the
refiner's step and the data), so a rerun prints the table at once. One torch thread;
15 minutes for the first twelve rows on this 2-core machine with a training run beside
it; 3.4-4.9 minutes a row with ``--people 313`` (every test person with 3+ photos).
``--seeds`` moves every seed, for a replicate.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/ablate_privacy.py
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: Bumped when what is measured changes (the cache is keyed by it).
BENCH_REVISION = 1
CACHE = Path(__file__).resolve().parent.parent / ".cache" / "ablate_privacy"
#: One switch at a time from the default, then two together and all three; then the
#: presets other than the default (one of them repeats a row: it is read from the cache).
VARIANTS: dict[str, dict[str, str | float]] = {
    "default": {},
    "outline new": {"outline": "new"},
    "outline new, ring painted": {"outline": "new-ring"},
    "model's skin tone": {"skin": "model"},
    "hair blurred": {"hair": "blur"},
    "context blurred": {"context": "blur"},
    "identity drawn freely": {"identity": "free"},
    "outline new, context blurred": {"outline": "new", "context": "blur"},
    "outline new, model's skin, context blurred": {"outline": "new", "skin": "model",
                                                   "context": "blur"},
    "outline new, context blurred, identity free": {"outline": "new", "context": "blur",
                                                    "identity": "free"},
    "all four": {"outline": "new", "skin": "model", "context": "blur", "identity": "free"},
    # What the default carries from the original even with a fresh seed per photo (knobs,
    # ``KNOBS``): every identity pushed away from the original's direction (the same for
    # every photo of a person), its colouring pulled towards the original's, the photo's
    # coarse light; each taken away alone, then all three.
    "identity never pushed": {"push": "never"},
    "tone not pulled": {"tone": 0.0},
    "coarse light not carried": {"low_frequency": 0.0},
    "none of the three": {"push": "never", "tone": 0.0, "low_frequency": 0.0},
}
PROBE_SEED, GALLERY_SEED = 5, 6
#: Knobs that are module constants rather than ``ContextRequest`` switches, set for one
#: variant: ``push: "never"``, no identity moved away from the original's direction, at
#: the first draw or any redraw (``morphable.model._opposite``); ``tone``, the pull of
#: the new colouring towards the original's (``incontext.TONE_STRENGTH``, which the
#: strict preset's tone bucket also reads: the variants here keep the skin matched);
#: ``low_frequency``, the share of the face's width above which the photo's light is
#: carried (``incontext.LOW_FREQUENCY``).
KNOBS = {"push": ("studio.core.morphable.model", "_opposite"),
         "tone": ("studio.core.surrogates.incontext", "TONE_STRENGTH"),
         "low_frequency": ("studio.core.surrogates.incontext", "LOW_FREQUENCY")}


@contextmanager
def knobs(switches: dict):
    """The request's switches of a variant, with its knobs (``KNOBS``) set meanwhile."""
    import importlib

    saved = []
    try:
        for name, value in switches.items():
            if name not in KNOBS:
                continue
            module = importlib.import_module(KNOBS[name][0])
            attr = KNOBS[name][1]
            saved.append((module, attr, getattr(module, attr)))
            setattr(module, attr, _not_pushed if name == "push" else value)
        yield {k: v for k, v in switches.items() if k not in KNOBS}
    finally:
        for module, attr, old in reversed(saved):
            setattr(module, attr, old)


def _not_pushed(sample: np.ndarray, original: np.ndarray, margin: float) -> np.ndarray:
    """``_opposite`` that moves nothing."""
    return sample


def celeba_people(people: int, distractors: int, photos: int):
    """(gallery [(path, id)], probes [(path, id)]): the first ``people`` test identities
    with ``photos`` or more photos (first photo to the gallery, the next ``photos - 1`` as
    probes), and ``distractors`` single-photo test identities in the gallery."""
    from studio.core.datasets import celeba_id, celeba_split

    by_id: dict[int, list[Path]] = defaultdict(list)
    for it in celeba_split(celeba_id(), "test"):
        by_id[it.identity].append(it.path)
    multi = sorted(i for i, p in by_id.items() if len(p) >= photos)[:people]
    single = sorted(i for i, p in by_id.items() if len(p) == 1)[:distractors]
    gallery = [(by_id[i][0], i) for i in multi + single]
    probes = [(p, i) for i in multi for p in by_id[i][1:photos]]
    return gallery, probes


class Bench:
    """The engine, and each photo's analysis made once for every variant."""

    def __init__(self) -> None:
        from studio.core.analysis.identity import IdentityEncoder
        from studio.core.surrogates.engine import SurrogateEngine

        self.engine = SurrogateEngine(staged=True)
        self.engine.load_generation()
        self.engine.load_3d()
        if self.engine.analyzer.identity is None:
            self.engine.analyzer.identity = IdentityEncoder()
        self.analyzer = self.engine.analyzer
        self.analyzer.load_second()
        self._seen: dict[str, tuple] = {}

    def photo(self, path: Path):
        """(image, its faces (each with both descriptors), the largest face's index)."""
        key = str(path)
        if key not in self._seen:
            from studio.core.analysis.images import load_image

            image = load_image(path)
            faces = self.analyzer.analyze(image).faces
            big = max(range(len(faces)), key=lambda i: faces[i].box[2] * faces[i].box[3],
                      default=None)
            self._seen[key] = (image, faces, big)
        return self._seen[key]

    def read(self, rgb: np.ndarray, original) -> dict:
        """The output's face at the original's place: both descriptors, joy, and both
        figures against the original (None where no face is found)."""
        from studio.core.analysis.identity import identity_distance
        from studio.core.surrogates import compositing

        found = self.analyzer.analyze(rgb, recall=False, second=False).faces
        centre = np.asarray(original.landmarks)[:, :2].mean(0)
        width = compositing.face_width(original.landmarks)
        near = [g for g in found
                if np.linalg.norm(g.landmarks[:, :2].mean(0) - centre) < 0.5 * width]
        if not near or near[0].descriptor is None:
            return {"found": False}
        g = min(near, key=lambda g: np.linalg.norm(g.landmarks[:, :2].mean(0) - centre))
        (g,) = self.analyzer.describe2(rgb, [g])
        return {"found": True, "d1": g.descriptor.tolist(), "d2": g.descriptor2.tolist(),
                "joy": float(g.attributes.joy),
                "distance": identity_distance(g.descriptor, original.descriptor),
                "similarity2": float(np.dot(g.descriptor2, original.descriptor2))}

    def anonymise(self, path: Path, seed: int, switches: dict, first_draw: bool) -> dict:
        from studio.core.surrogates.incontext import ContextRequest
        from studio.core.surrogates.verified import replace_verified
        from studio.core.surrogates.whole_photo import photo_seed

        image, faces, big = self.photo(path)
        if big is None:
            return {"found": False, "original": False}
        request = ContextRequest(seed=photo_seed(seed, image.rgb), **switches)
        maker = self.engine.incontext
        prepared = [maker.prepare(image.rgb, f) for f in faces]
        row: dict = {"original": True}
        if first_draw:  # the switch alone: the first draw, before any redraw
            first = maker.make(image.rgb, faces, request, prepared)
            row["first"] = self.read(first.image, faces[big])
        t0 = time.perf_counter()
        done = replace_verified(maker, self.analyzer, image.rgb, faces, request, prepared)
        row["seconds"] = time.perf_counter() - t0
        row["draws"] = done.draws
        row["blurred"] = not done.result.faces[big].replaced
        row.update(self.read(done.result.image, faces[big]))
        row["joy0"] = float(faces[big].attributes.joy)
        return row


def cache_key(name: str, switches: dict, data: dict) -> str:
    from studio.core.refiner.model import load_refiner
    from studio.core.surrogates.privacy import privacy_preset
    from studio.core.surrogates.registry import IN_CONTEXT, REGISTRY

    refiner, _ = load_refiner()
    default = privacy_preset(None).switches()  # a preset and a variant alike share rows
    switches = {k: v for k, v in switches.items() if default.get(k) != v}
    blob = json.dumps({"bench": BENCH_REVISION, "switches": switches, "data": data,
                       "revision": REGISTRY[IN_CONTEXT].revision,
                       "refiner": refiner.step if refiner else None}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_variant(bench, name: str, switches: dict, gallery, probes, held,
                data: dict) -> dict:
    """The variant's rows (from the cache where it has them); ``bench`` gives the Bench."""
    CACHE.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in name)
    path = CACHE / f"{slug}-{cache_key(name, switches, data)}.json"
    if path.is_file():
        return json.loads(path.read_text())
    bench = bench()
    t0 = time.perf_counter()
    with knobs(switches) as request:
        g_seed, p_seed = (seed + data.get("seeds", 0) for seed in (GALLERY_SEED, PROBE_SEED))
        rows = {"gallery": [bench.anonymise(p, g_seed, request, False) for p, _ in gallery],
                "probes": [bench.anonymise(p, p_seed, request, False) for p, _ in probes],
                "held": [bench.anonymise(p, p_seed, request, True) for p in held],
                "minutes": (time.perf_counter() - t0) / 60}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows))
    tmp.replace(path)
    return rows


@dataclass(frozen=True)
class Parrot:
    """The parrot attack on one descriptor: rank-1 rate, chance, probes counted, gallery
    people, and each counted probe's hit (by its index in the probe list)."""

    rate: float
    chance: float
    n_probes: int
    n_gallery: int
    hits: dict[int, bool]


def parrot(rows: dict, gallery, probes, key: str) -> Parrot:
    """The parrot attack on descriptor ``key`` ("d1": dlib, "d2": the second recognizer)."""
    from studio.core.metrics.attacks import parrot_attack

    size = 128 if key == "d1" else 192

    def desc(r: dict) -> np.ndarray:
        return np.asarray(r[key], np.float64) if r.get("found") else np.full(size, np.nan)

    keep = [i for i, r in enumerate(rows["probes"]) if r.get("original")]
    gal = np.array([desc(r) for r in rows["gallery"]])
    gid = np.array([i for _, i in gallery])
    pid = np.array([probes[i][1] for i in keep])
    found = ~np.isnan(gal).any(axis=1)
    keep = [k for k, p in zip(keep, pid, strict=True) if p in set(gid[found])]
    pid = np.array([probes[i][1] for i in keep])
    result = parrot_attack(np.array([desc(rows["probes"][i]) for i in keep]), pid, gal, gid,
                           ranks=(1,))
    hits = {k: bool(r == 1) for k, r in zip(keep, result.ranks, strict=True) if r == r}
    return Parrot(result.rates[1], result.chance[1], result.n_probes, result.gallery_size,
                  hits)


def paired(base: Parrot, other: Parrot) -> str:
    """Probes found by ``base`` only / by ``other`` only (the same photos and seeds), and
    the exact two-sided sign test's p on those discordant probes (McNemar)."""
    both = base.hits.keys() & other.hits.keys()
    lost = sum(base.hits[k] and not other.hits[k] for k in both)
    gained = sum(other.hits[k] and not base.hits[k] for k in both)
    n = lost + gained
    p = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(lost, gained) + 1)) / 2 ** n)
    return f"-{lost} +{gained} (p {p:.2f})"


def times_chance(rate: float, chance: float, n: int) -> str:
    """``rate`` as hits of ``n`` probes and a multiple of chance, with its 95% Wilson
    interval."""
    z = 1.96
    centre = (rate + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(rate * (1 - rate) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (f"{round(rate * n)}/{n} ({rate / chance:.1f}x, {max(centre - half, 0) / chance:.1f}-"
            f"{(centre + half) / chance:.1f})")


def held_figures(rows: list[dict]) -> dict[str, float]:
    """Shares over the held-out faces; a face with no face read back counts as another
    person (it is blurred or gone), as the read-back benchmark counts it."""
    from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
    from studio.core.metrics.comparison import threshold2

    t2 = threshold2()
    faces = [r for r in rows if r.get("original")]
    first = [r["first"] for r in faces]
    other2 = [not f["found"] or f["similarity2"] < t2 for f in first]
    by2 = [not r["found"] or r["similarity2"] < t2 for r in faces]
    by1 = [not r["found"] or r["distance"] >= SAME_PERSON_THRESHOLD for r in faces]
    smile = [(r["joy"] >= 0.5) == (r["joy0"] >= 0.5) for r in faces if r["found"]]
    return {"faces": len(faces), "first2": float(np.mean(other2)),
            "first_sim2": float(np.mean([f["similarity2"] for f in first if f["found"]])),
            "by2": float(np.mean(by2)), "by1": float(np.mean(by1)),
            "both": float(np.mean(np.logical_and(by1, by2))),
            "blurred": int(sum(r["blurred"] for r in faces)), "smile": float(np.mean(smile)),
            "draws": float(np.mean([r["draws"] for r in faces])),
            "seconds": float(np.mean([r["seconds"] for r in faces]))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=90,
                        help="celeba-id test people with 3+ photos (gallery + 2 probes each)")
    parser.add_argument("--distractors", type=int, default=0,
                        help="single-photo test people added to the gallery")
    parser.add_argument("--genki", type=int, default=30)
    parser.add_argument("--utk", type=int, default=30)
    parser.add_argument("--seeds", type=int, default=0,
                        help="added to the gallery's and the probes' seeds: a replicate")
    parser.add_argument("--only", nargs="*", default=None, help="variants to run")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    from studio.core.evaluation.held_out import held_out
    from studio.core.morphable.model import MORPHABLE_FILE
    from studio.core.surrogates.privacy import PRIVACY_PRESETS

    gallery, probes = celeba_people(args.people, args.distractors, 3)
    held = held_out(MORPHABLE_FILE, "morphable model").paths(args.genki, args.utk)
    data = {"gallery": [str(p) for p, _ in gallery], "probes": [str(p) for p, _ in probes],
            "held": [str(p) for p in held]}
    if args.seeds:  # the default's cache keys stay as they were
        data["seeds"] = args.seeds
    variants = dict(VARIANTS)
    variants.update({f"preset {n}": p.switches() for n, p in PRIVACY_PRESETS.items()
                     if n != "default"})
    bench = cache(Bench)
    lines = []
    base: dict[str, Parrot] = {}
    for name, switches in variants.items():
        if args.only and name not in args.only and name != "default":
            continue
        rows = run_variant(bench, name, switches, gallery, probes, held, data)
        p1, p2 = parrot(rows, gallery, probes, "d1"), parrot(rows, gallery, probes, "d2")
        base = base or {"d1": p1, "d2": p2}
        h = held_figures(rows["held"])
        cells = [name, times_chance(p1.rate, p1.chance, p1.n_probes),
                 times_chance(p2.rate, p2.chance, p2.n_probes),
                 f"{paired(base['d1'], p1)} · {paired(base['d2'], p2)}",
                 f"{h['first2']:.3f} ({h['first_sim2']:.2f})", f"{h['by2']:.3f}",
                 f"{h['by1']:.3f}", str(h["blurred"]), f"{h['smile']:.3f}",
                 f"{h['draws']:.2f}", f"{rows['minutes']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
        print(lines[-1], file=sys.stderr, flush=True)
    print(f"\nparrot: {p1.n_probes} probes (other photos) of {args.people} celeba-id test "
          f"people, gallery {p1.n_gallery} people (chance {p1.chance:.4f}); held-out: "
          f"{h['faces']} faces ({args.genki} GENKI-4K test + {args.utk} UTKFace hold-out)\n")
    heads = ["variant", "parrot rank-1 hits, dlib (x chance, 95% interval)",
             "parrot rank-1, second", "against default: lost +gained (sign test), dlib · second",
             "first draw another by second (mean similarity)",
             "another by second", "another by dlib", "blurred", "smile", "draws", "minutes"]
    print("| " + " | ".join(heads) + " |")
    print("|" + "---|" * len(heads))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
