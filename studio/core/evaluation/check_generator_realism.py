"""The generator against held-out real faces: the rows of issue 16's target table that need
the faces themselves, not only their labels.

Each held-out face (GENKI-4K test split, UTKFace hold-out) is drawn by the generator from
its own estimate and measured exactly as ``studio evaluate`` measures its GAN surrogate
(``observations.observe``: the analysis, the independent 7-class judge and the realism
features). The reals of the realism rows are those same faces, cropped in the canonical
framing at ``REALISM_SIZE``. Faces whose bytes are in the measured generator's training
manifest are set aside: they are not held out from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from studio.core.analysis.analyzer import FaceAnalyzer
from studio.core.errors import StudioError
from studio.core.evaluation.acceptance import Metric
from studio.core.evaluation.held_out import HeldOut, held_out
from studio.core.evaluation.realism import RealismFeatures, kid, realism
from studio.core.evaluation.sources import Source, spread
from studio.core.evaluation.study import Measurement
from studio.core.progress import Progress, track

#: Issue 16's bars.
C2ST_BAR = 0.75  # classifier two-sample test on dlib descriptors; 0.5 = indistinguishable
KID_RATIO_BAR = 10.0  # KID over the real-versus-real figure
SMILE_BAR = 0.90  # smile agreement over every joy bin together
#: KID is unbiased: between two halves of one set its expectation is 0, so a single split's
#: figure is noise of either sign and no denominator. The real-versus-real figure is
#: therefore the root mean square of that KID over this many seeded half splits of the
#: reals: the size a difference reaches by chance at this number of faces. Like KID's own
#: noise it shrinks as the faces grow in number, so the ratio is of the run's size
#: (``--realism-faces``); the absolute figures are in the row's detail.
KID_REFERENCE_SPLITS = 10
#: Each half of the reals and of the samples needs 2 x 5 faces for the classifier's folds.
MIN_FACES = 20


@dataclass(frozen=True)
class _GanBench:
    """What ``observations.observe`` reads of an engine for the GAN: the analyzer (with
    its identity encoder) and the generator being measured, one draw per face (the
    studio's redraws pick by the same analysis these rows measure with)."""

    analyzer: FaceAnalyzer
    generator: object  # generator.sampler.Sampler
    gan_draws: int = 1


def measure_held_out(analyzer: FaceAnalyzer, generator, sources: list[Source],
                     progress: Progress | None = None) -> tuple[list[Measurement], list[str]]:
    """Each source's original and the generator's face from its own estimate, observed as
    ``studio evaluate`` observes the GAN surrogate; the second list says what was set
    aside (no face, unreadable)."""
    from studio.core.analysis.images import load_image
    from studio.core.assets import sha256_of
    from studio.core.evaluation.observations import observe
    from studio.core.surrogates.registry import GAN, REGISTRY

    bench, gan = _GanBench(analyzer, generator), REGISTRY[GAN]
    rows, skipped = [], []
    for s in track(sources, progress, "held-out faces"):
        try:
            seen = observe(bench, load_image(s.path), sha256_of(s.path), [gan])
        except (StudioError, OSError) as exc:
            skipped.append(f"{s.name}: {exc}")
            continue
        if GAN not in seen:
            skipped.append(f"{s.name}: no face found")
            continue
        rows.append(Measurement("held-out", str(s.path), s.identity, GAN, s.truth,
                                seen["original"], seen[GAN]))
    return rows, skipped


def kid_reference(reals: np.ndarray, seed: int = 0, splits: int = KID_REFERENCE_SPLITS
                  ) -> float:
    """Real-versus-real KID: its root mean square over ``splits`` seeded half splits."""
    values = []
    for i in range(splits):
        order = np.random.default_rng(seed + i).permutation(len(reals))
        half = len(reals) // 2
        values.append(kid(reals[order[:half]], reals[order[half:]], seed + i))
    return float(np.sqrt(np.mean(np.square(values))))


def realism_metrics(outputs: RealismFeatures, reals: RealismFeatures,
                    sources: np.ndarray | list[int] | None, seed: int = 0) -> list[Metric]:
    """C2ST, KID ratio and HOG face-found rate of ``outputs`` against ``reals``
    (``realism.realism``: like for like, never an output against its own real)."""
    from threadpoolctl import threadpool_limits

    r = realism(outputs, reals, seed, sources)
    ref = r.reference
    with threadpool_limits(1):
        kid_ref = kid_reference(reals.descriptor, seed)
        kid_ref_pooled = kid_reference(reals.pooled, seed)
    ratio = r.kid / kid_ref if kid_ref > 0 else math.nan
    ratio_pooled = r.kid_pooled / kid_ref_pooled if kid_ref_pooled > 0 else math.nan
    size = f"{r.n} samples, {r.n_reals} reals at 64 px"
    return [
        Metric("realism: C2ST on descriptors vs held-out reals", r.c2st, f"<= {C2ST_BAR}",
               r.c2st <= C2ST_BAR, f"real-vs-real {ref.c2st:.3f}; pooled stage "
               f"{r.c2st_pooled:.3f} (real-vs-real {ref.c2st_pooled:.3f}); {size}"),
        Metric("realism: KID / real-vs-real KID", ratio, f"<= {KID_RATIO_BAR:g}",
               ratio <= KID_RATIO_BAR,  # NaN (an undefined ratio) fails
               f"KID {r.kid:.5f}, real-vs-real {kid_ref:.5f} (RMS over "
               f"{KID_REFERENCE_SPLITS} half splits); pooled stage {ratio_pooled:.1f}x; "
               f"FD {r.ratio('fd'):.1f}x real-vs-real"),
        Metric("realism: dlib HOG face-found rate", r.face_found,
               f">= {r.face_found_reals:.3f}", r.face_found >= r.face_found_reals,
               f"reals {r.face_found_reals:.3f}; sharpness / reals {r.sharpness_ratio:.2f} "
               f"(real-vs-real {ref.sharpness_ratio:.2f})"),
    ]


def smile_metrics(rows: list[Measurement]) -> list[Metric]:
    """Smile agreement over every joy bin of the original (``summary.JOY_BINS``), each
    bin's figure in the detail; the independent 7-class judge's agreement, reported."""
    from studio.core.evaluation.summary import expression_agreement, joy_bins, smile_agreement

    agree = smile_agreement(rows)
    bins = "; ".join(f"{b.low:.1f}-{b.high:.1f}: "
                     + (f"{b.smile_agreement:.1%} of {b.n}" if b.n else "none")
                     for b in joy_bins(rows))
    seven = expression_agreement(rows)
    happy = expression_agreement(rows, happy=True)
    return [
        Metric("smile agreement, every joy bin", agree, f">= {SMILE_BAR:.2f}",
               agree >= SMILE_BAR, f"{len(rows)} held-out faces (no face = lost); by the "
               f"original's joy: {bins}"),
        Metric("7-class agreement (independent judge)", seven, "reported", True,
               f"FER-2013 mini-Xception; happy-or-not {happy:.3f}; {len(rows)} faces"),
    ]


def held_out_metrics(analyzer: FaceAnalyzer, generator, faces: int,
                     held: HeldOut | None = None, seed: int = 0,
                     progress: Progress | None = None) -> list[Metric]:
    """Realism and smile agreement on ``faces`` held-out faces spread over both sets."""
    if faces < MIN_FACES:
        raise StudioError(f"the realism rows need at least {MIN_FACES} held-out faces, "
                          f"got {faces}")
    from studio.core.generator.training_data import GENERATOR

    held = held or held_out(generator.path, GENERATOR)
    rows, skipped = measure_held_out(analyzer, generator, spread(held.unseen(), faces),
                                     progress)
    reals = RealismFeatures.from_rows([r.original.realism for r in rows])
    outputs = RealismFeatures.from_rows([r.output.realism for r in rows])
    metrics = realism_metrics(outputs, reals, np.arange(len(rows)), seed)
    metrics += smile_metrics(rows)
    first = metrics[0]  # where the faces came from, said once
    note = f"held-out faces: {held.note()}; {len(skipped)} without a face"
    return [replace(first, detail=f"{first.detail}; {note}"), *metrics[1:]]
