"""Measure the generator with the face analysis against its bars (issue 16's target
table where it sets one).

Requested labels come from held-out images (GENKI-4K test split and the UTKFace hold-out),
never from training images. The realism and every-joy-bin rows draw held-out faces
themselves (``check_generator_realism``); held-out photos in the generator's training
manifest are set aside there and in the privacy rows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.analysis.attributes import Attributes
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.analysis.landmarks import largest_face
from studio.core.errors import StudioError
from studio.core.evaluation.acceptance import Metric, face_descriptors
from studio.core.evaluation.held_out import HeldOut
from studio.core.generator.sampler import Sampler
from studio.core.progress import Progress, track


@dataclass
class SampleMeasure:
    requested: Attributes
    measured: Attributes | None
    descriptor: np.ndarray | None


def measure(analyzer: FaceAnalyzer, images: np.ndarray, requested: list[Attributes],
            progress: Progress | None, desc: str) -> list[SampleMeasure]:
    out = []
    for img, req in track(list(zip(images, requested, strict=True)), progress, desc):
        faces = analyzer.analyze(img).faces
        if faces:
            f = largest_face(faces)
            out.append(SampleMeasure(req, f.attributes, f.descriptor))
        else:
            out.append(SampleMeasure(req, None, None))
    return out


def heldout_labels(cache_records: dict[str, dict], held: HeldOut
                   ) -> list[tuple[str, Attributes]]:
    """The held-out faces' attributes, each with its set's kind (``held_out.SETS``), from
    the label cache keyed by file path."""
    paths = [(d.kind, str(s.path)) for d in held.datasets for s in d.sources]
    out = []
    for kind, p in paths:
        rec = cache_records.get(p)
        if rec and rec.get("faces"):
            out.append((kind, Attributes(rec["joy"], rec["p_male"], rec["yaw"], rec["pitch"],
                                         rec["roll"])))
    return out


def control_metrics(samples: list[SampleMeasure]) -> list[Metric]:
    found = [s for s in samples if s.measured is not None]
    det = len(found) / len(samples)
    req = np.array([[s.requested.joy, s.requested.p_male, s.requested.yaw, s.requested.pitch,
                     s.requested.roll] for s in found])
    got = np.array([[s.measured.joy, s.measured.p_male, s.measured.yaw, s.measured.pitch,
                     s.measured.roll] for s in found])
    joy_corr = float(np.corrcoef(req[:, 0], got[:, 0])[0, 1])
    extreme = (req[:, 0] <= 0.2) | (req[:, 0] >= 0.8)
    joy_agree = float(np.mean((req[extreme, 0] >= 0.5) == (got[extreme, 0] >= 0.5)))
    yaw_in = np.abs(req[:, 2]) <= 30
    yaw_mae = float(np.mean(np.abs(req[yaw_in, 2] - got[yaw_in, 2])))
    yaw_corr = float(np.corrcoef(req[:, 2], got[:, 2])[0, 1])
    roll_in = np.abs(req[:, 4]) <= 15
    roll_mae = float(np.mean(np.abs(req[roll_in, 4] - got[roll_in, 4])))
    pitch_corr = float(np.corrcoef(req[:, 3], got[:, 3])[0, 1])
    g_ext = (req[:, 1] <= 0.1) | (req[:, 1] >= 0.9)
    g_agree = float(np.mean((req[g_ext, 1] >= 0.5) == (got[g_ext, 1] >= 0.5)))
    n = f"{len(found)} faces of {len(samples)} samples"
    return [
        Metric("realism: face detected", det, ">= 0.95", det >= 0.95, n),
        Metric("joy correlation", joy_corr, ">= 0.85", joy_corr >= 0.85, n),
        Metric("smile agreement, joy <=0.2 or >=0.8", joy_agree, ">= 0.90", joy_agree >= 0.9,
               f"{int(extreme.sum())} samples"),
        Metric("yaw MAE (deg), |yaw| <= 30", yaw_mae, "<= 5", yaw_mae <= 5,
               f"{int(yaw_in.sum())} samples; yaw correlation {yaw_corr:.3f}"),
        Metric("roll MAE (deg), |roll| <= 15", roll_mae, "<= 5", roll_mae <= 5,
               f"{int(roll_in.sum())} samples"),
        Metric("pitch correlation", pitch_corr, ">= 0.80", pitch_corr >= 0.8, n),
        Metric("gender agreement, P <=0.1 or >=0.9", g_agree, ">= 0.95", g_agree >= 0.95,
               f"{int(g_ext.sum())} samples"),
    ]


def diversity_metrics(samples: list[SampleMeasure], label_sets: int) -> list[Metric]:
    """Pairwise identity distances among samples that share their labels."""
    groups: dict[tuple, list[np.ndarray]] = {}
    for s in samples:
        if s.descriptor is not None:
            key = tuple(np.round(s.requested.normalized(), 4))
            groups.setdefault(key, []).append(s.descriptor)
    dists = []
    for descs in groups.values():
        d = np.array(descs)
        iu = np.triu_indices(len(d), 1)
        dists.append(np.linalg.norm(d[:, None] - d[None], axis=2)[iu])
    all_d = np.concatenate(dists)
    mean, low = float(all_d.mean()), float(np.mean(all_d < 0.4))
    detail = f"{label_sets} label sets x 50 samples, {len(all_d)} pairs"
    return [Metric("diversity: mean pairwise identity distance", mean, ">= 0.55", mean >= 0.55,
                   detail),
            Metric("diversity: share of pairs below 0.4", low, "< 0.02", low < 0.02, detail)]


def nearest_distances(queries: np.ndarray, reference: np.ndarray) -> np.ndarray:
    out = []
    for i in range(0, len(queries), 256):
        q = queries[i:i + 256]
        d = np.sqrt(np.maximum(((q[:, None, :] - reference[None]) ** 2).sum(-1), 0))
        out.append(d.min(axis=1))
    return np.concatenate(out)


def median_difference_ci(a: np.ndarray, b: np.ndarray, seed: int = 0,
                         resamples: int = 2000) -> tuple[float, float]:
    """95% percentile-bootstrap interval of median(a) - median(b) (independent samples):
    how far apart two medians could be by the draw of faces alone. NaN when either set
    has fewer than two values."""
    from scipy.stats import bootstrap

    if len(a) < 2 or len(b) < 2:
        return float("nan"), float("nan")
    res = bootstrap((np.asarray(a), np.asarray(b)),
                    lambda x, y, axis: np.median(x, axis=axis) - np.median(y, axis=axis),
                    n_resamples=resamples, method="percentile", vectorized=True,
                    random_state=np.random.default_rng(seed))
    ci = res.confidence_interval
    return float(ci.low), float(ci.high)


def run_check(generator: Sampler, analyzer: FaceAnalyzer, cache_records: dict[str, dict],
             n: int = 1000, diversity_sets: int = 4, privacy_faces: int | None = None,
             training_reference: int = 3000, realism_faces: int = 400, seed: int = 0,
             progress: Progress | None = None) -> list[Metric]:
    """Every bar's metric; ``realism_faces`` held-out faces for the realism and every-joy-bin
    rows, ``privacy_faces`` GENKI-4K test faces (None: all) for the own-label row."""
    from studio.core.analysis.images import load_image
    from studio.core.evaluation.check_generator_realism import MIN_FACES, held_out_metrics
    from studio.core.evaluation.held_out import SETS, held_out
    from studio.core.generator.training_data import GENERATOR, training_sources
    from studio.core.surrogates.gan_draws import draw_verified

    if realism_faces < MIN_FACES:  # said before the long sampling, not after it
        raise StudioError(f"--realism-faces must be at least {MIN_FACES}, got {realism_faces}")

    rng = random.Random(seed)
    held = held_out(generator.path, GENERATOR)
    pool = heldout_labels(cache_records, held)
    picks = [rng.choice(pool) for _ in range(n)]
    requested = [a for _, a in picks]
    images = generator.sample(requested, seed=seed)
    samples = measure(analyzer, images, requested, progress, "generated samples")
    metrics = control_metrics(samples)

    div_labels = [rng.choice(pool)[1] for _ in range(diversity_sets)]
    div_req = [a for a in div_labels for _ in range(50)]
    div_imgs = generator.sample(div_req, seed=seed + 1)
    metrics += diversity_metrics(measure(analyzer, div_imgs, div_req, progress, "diversity"),
                                 diversity_sets)

    metrics += held_out_metrics(analyzer, generator, realism_faces, held, seed, progress)

    # Privacy 1: each held-out GENKI face against a surrogate drawn from its own labels.
    # One draw measures the generator; the studio's redrawn surrogates (gan_draws) are
    # what batch, evaluate and the crowd study hand out, said beside it.
    faces = held.unseen(("genki4k-test",))[:privacy_faces]
    analyzer.load_second()  # the redrawn surrogates answer to both recognizers
    far = total = redrawn_far = redrawn = 0
    real_desc = []
    for it in track(faces, progress, "privacy (own labels)"):
        found = analyzer.analyze(load_image(it.path)).faces
        if not found:
            continue
        f = largest_face(found)
        real_desc.append(f.descriptor)
        seed = rng.randrange(1 << 30)
        drawn = draw_verified(generator, analyzer, f, seed)
        one, kept = drawn.first, drawn.comparison
        if one.distance is not None:
            total += 1
            far += one.distance >= SAME_PERSON_THRESHOLD
        if kept.distance is not None:
            redrawn += 1
            redrawn_far += kept.distance >= SAME_PERSON_THRESHOLD
    share = far / max(total, 1)
    metrics.append(Metric("privacy: surrogate >= 0.6 from its original", share, ">= 0.97",
                          share >= 0.97, f"{total} held-out GENKI-4K faces, one draw each; "
                          f"redrawn as the studio hands them out: "
                          f"{redrawn_far / max(redrawn, 1):.3f}; "
                          f"{held.note(('genki4k-test',))}"))

    # Privacy 2: samples are no closer to training faces than held-out real faces are.
    # The bar's reals are the GENKI-4K test faces; the detail adds each label set's
    # samples against that set's own reals.
    train_paths = [p for _, p in training_sources()]
    rng.shuffle(train_paths)
    ref_arr = face_descriptors(analyzer, train_paths[:training_reference], progress,
                               "training-face descriptors")
    utk = face_descriptors(analyzer, [s.path for s in held.unseen(("utkface-holdout",))]
                           [:privacy_faces], progress, "UTKFace hold-out descriptors")

    def near(desc) -> np.ndarray:
        return nearest_distances(np.asarray(desc), ref_arr) if len(desc) else np.array([])

    def median(d: np.ndarray) -> float:
        return float(np.median(d)) if len(d) else float("nan")

    near_gen = near([s.descriptor for s in samples if s.descriptor is not None])
    near_real = near(real_desc)
    med_gen, med_real = median(near_gen), median(near_real)
    reals = {"genki4k-test": med_real, "utkface-holdout": median(near(utk))}
    drawn: dict[str, list] = {kind: [] for kind in SETS}
    for (kind, _), s in zip(picks, samples, strict=True):
        if s.descriptor is not None:
            drawn[kind].append(s.descriptor)
    by_set = "; ".join(f"{name} labels {median(near(drawn[kind])):.3f} vs its reals "
                       f"{reals[kind]:.3f}" for kind, name in SETS.items())
    low, high = median_difference_ci(near_gen, near_real, seed)
    metrics.append(Metric("privacy: median nearest-training distance", med_gen,
                          f">= {med_real:.3f}", med_gen >= med_real,
                          f"held-out real faces: {med_real:.3f}; samples minus reals "
                          f"{med_gen - med_real:+.3f} (95% bootstrap interval {low:+.3f} to "
                          f"{high:+.3f}); under {SAME_PERSON_THRESHOLD} from a training face: "
                          f"samples {np.mean(near_gen < SAME_PERSON_THRESHOLD):.3f}, reals "
                          f"{np.mean(near_real < SAME_PERSON_THRESHOLD):.3f}; {len(ref_arr)} "
                          f"training faces; set by set, samples vs reals: {by_set}"))
    return metrics
