"""The parrot attack's floor: what the labels a surrogate keeps give away on their own.

A surrogate fit for crowd labels keeps, by design, the five attributes the studio reads
(``analysis.attributes``: joy, P(male), yaw, pitch, roll). An attacker who reads only those
off the outputs, and off a gallery anonymised the same way, still finds people above
chance: photos of one person share a P(male) reading, and often a shoot's pose and smile.
Run on the originals, the attack gives the floor that no label-keeping surrogate can go
below, whatever face it draws; run on a method's outputs, what its labels give away.

Among 311 celeba-id test people (624 photos other than the gallery's), the five labels
alone found the person at 6.0x chance (95% interval 3.4-10.4): the issue's parrot targets
(5x for the default preset, 2x for strict) sit at or below that floor (docs/privacy.md).

The attacker standardises each label over everything it holds (the gallery and the
probes) and ranks gallery people by Euclidean distance, as ``metrics.attacks`` ranks
descriptors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from studio.core.analysis.attributes import NAMES
from studio.core.evaluation.observations import Observation
from studio.core.evaluation.privacy import anonymised_gallery, other_photo
from studio.core.evaluation.study import Measurement
from studio.core.metrics.attacks import ParrotAttack, gallery_rows, parrot_attack


def label_vectors(observations: Iterable[Observation]) -> np.ndarray:
    """(n, 5) the kept labels (``attributes.NAMES``) as read; a row of NaN without a face."""
    return np.array([[getattr(o, k) if o.found else np.nan for k in NAMES]
                     for o in observations], np.float64).reshape(-1, len(NAMES))


def standardised(*blocks: np.ndarray) -> list[np.ndarray]:
    """Each block with every label at zero mean and unit spread over all blocks together
    (what the attacker can compute from what it holds)."""
    pooled = np.concatenate(blocks)
    mean = np.nanmean(pooled, axis=0)
    spread = np.nanstd(pooled, axis=0)
    spread = np.where(np.isfinite(spread) & (spread > 1e-9), spread, 1.0)
    return [(b - mean) / spread for b in blocks]


def label_parrot(rows: Sequence[Measurement],
                 gallery_outputs: dict[tuple[str, str, str], Observation]
                 ) -> tuple[ParrotAttack, float | None] | None:
    """The parrot attack by the kept labels alone on one method's outputs (``rows``, one
    data set with identities), and its rank-1 among outputs of photos other than the
    gallery's; None where it cannot be run. The gallery is the recognizers' parrot
    gallery (``privacy.anonymised_gallery``); on the original row, the originals (the
    floor)."""
    if not rows:
        return None
    rows = list(rows)
    ids = np.array([r.identity for r in rows])
    gallery = np.array(gallery_rows(ids))
    anonymised = anonymised_gallery(rows, gallery, gallery_outputs, label_vectors)
    if anonymised is None:
        return None
    probes, anonymised = standardised(label_vectors(r.output for r in rows), anonymised)
    try:
        result = parrot_attack(probes, ids, anonymised, ids[gallery])
    except ValueError:
        return None
    other = other_photo(ids, gallery)
    return result, (result.rate(1, among=other) if other.any() else None)
