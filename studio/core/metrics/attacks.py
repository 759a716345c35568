"""How well de-identified faces ("outputs") resist re-identification.

Attack I matches outputs against a gallery of originals; the parrot attack matches them
against the gallery anonymised by the same method; attack II trains classifiers on outputs
of known people.

Everything is measured on descriptors compared by Euclidean distance: dlib's 128-d, the
metric behind ``SAME_PERSON_THRESHOLD``, or the second recognizer's unit 192-d, where the
distance √(2 − 2·cos) ranks as its cosine similarity does (``evaluation.privacy`` runs each
measure with both). A NaN descriptor (or distance) means no face was found on an
output; each measure says how it treats those, because dropping them silently would flatter
whichever side they happen to help.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.distance import cdist
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import auc as area_under
from sklearn.metrics import roc_curve
from sklearn.neighbors import NearestCentroid
from sklearn.preprocessing import StandardScaler, normalize
from sklearn.svm import SVC

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD

_CHUNK = 1024  # probes per block of the distance matrix: bounds memory for large galleries


def no_face_count(values: np.ndarray) -> int:
    """How many distances (1-d) or descriptor rows (2-d) are NaN: outputs with no face found."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        return int(np.isnan(values).sum())
    return int(np.isnan(values).any(axis=1).sum())


def deidentified_share(distances: np.ndarray, threshold: float = SAME_PERSON_THRESHOLD
                       ) -> float:
    """Share of outputs at least ``threshold`` from their original (dlib: another person).

    NaN distances (no face on the output) are excluded, so this rates the faces that exist;
    report ``no_face_count`` beside it. NaN when no distance is finite.
    """
    d = np.asarray(distances, np.float64)
    d = d[~np.isnan(d)]
    return float(np.mean(d >= threshold)) if d.size else float("nan")


@dataclass(frozen=True, eq=False)  # array fields: compare the arrays, not the results
class Roc:
    """Verification ROC; "same person" is decided when distance <= threshold.

    ``tar`` counts genuine pairs without a face (NaN) as rejected at every threshold, so the
    curve ends at tar = 1 - n_no_face / n_genuine: the attacker cannot verify a missing face.
    """

    far: np.ndarray = field(repr=False)
    tar: np.ndarray = field(repr=False)
    thresholds: np.ndarray = field(repr=False)  # distances; the first is -inf (accept none)
    auc: float
    n_genuine: int
    n_impostor: int
    n_no_face: int

    def tar_at(self, far: float) -> float:
        """The best TAR whose FAR is at most ``far``; below 1 / n_impostor that is FAR 0."""
        return float(self.tar[self.far <= far].max())

    @property
    def eer(self) -> float:
        """Equal error rate: where FAR meets 1 - TAR, interpolated along the curve."""
        gap = self.far - (1.0 - self.tar)  # never falls: -1 at (0, 0), >= 0 at the end
        i = int(np.argmax(gap >= 0))
        if i == 0:
            return float(self.far[0])
        w = -gap[i - 1] / (gap[i] - gap[i - 1])
        return float(self.far[i - 1] + w * (self.far[i] - self.far[i - 1]))


def verification_roc(genuine: np.ndarray, impostor: np.ndarray) -> Roc:
    """ROC of the verifier "distance <= t means the same person".

    NaN impostor distances are dropped (a pair without a face says nothing about false
    accepts); NaN genuine distances count as rejections (see ``Roc``).
    """
    g = np.asarray(genuine, np.float64).ravel()
    im = np.asarray(impostor, np.float64).ravel()
    im = im[~np.isnan(im)]
    found = g[~np.isnan(g)]
    if not found.size or not im.size:
        raise ValueError("verification_roc needs at least one finite genuine and impostor "
                         f"distance (got {found.size} and {im.size})")
    labels = np.r_[np.ones(found.size), np.zeros(im.size)]
    far, tpr, scores = roc_curve(labels, -np.r_[found, im])
    tar = tpr * (found.size / g.size)
    return Roc(far, tar, -scores, float(area_under(far, tar)), g.size, im.size,
               g.size - found.size)


def impostor_distances(a_desc: np.ndarray, a_ids: Sequence | np.ndarray, b_desc: np.ndarray,
                       b_ids: Sequence | np.ndarray, max_pairs: int = 200_000, seed: int = 0
                       ) -> np.ndarray:
    """Distances of pairs (a_i, b_j) of different identities: all of them when there are at
    most ``max_pairs``, else ``max_pairs`` distinct pairs drawn with ``seed``.

    200,000 pairs put 200 impostors under FAR 1e-3, enough to read TAR there. Rows with a
    NaN descriptor are dropped.
    """
    a, ai = _faces(a_desc, a_ids)
    b, bi = _faces(b_desc, b_ids)
    _, codes = np.unique(np.r_[ai, bi], return_inverse=True)
    ca, cb = codes[: len(ai)], codes[len(ai):]
    n_all = len(ca) * len(cb)
    same = np.bincount(ca, minlength=codes.max(initial=-1) + 1)
    same = int(same @ np.bincount(cb, minlength=same.size)) if n_all else 0
    n_diff = n_all - same
    if n_diff <= max_pairs:
        flat = np.flatnonzero((ca[:, None] != cb[None, :]).ravel())
    else:
        rng = np.random.default_rng(seed)
        draw = min(n_all, int(max_pairs * n_all / n_diff * 1.05) + 64)
        flat = rng.choice(n_all, draw, replace=False)
        flat = flat[ca[flat // len(cb)] != cb[flat % len(cb)]]
        if flat.size < max_pairs:  # unlucky draw: fall back to choosing among all of them
            flat = np.flatnonzero((ca[:, None] != cb[None, :]).ravel())
            flat = rng.choice(flat, max_pairs, replace=False)
        flat = flat[:max_pairs]
    i, j = np.divmod(flat, len(cb))
    out = np.empty(flat.size)
    step = 32_768
    for s in range(0, flat.size, step):
        out[s:s + step] = np.linalg.norm(a[i[s:s + step]] - b[j[s:s + step]], axis=1)
    return out


def gallery_rows(ids: Sequence | np.ndarray) -> np.ndarray:
    """The rows that form the gallery of attack I and of the parrot attack: each identity's
    first row, in row order.

    One rule for both, so that the parrot's anonymised gallery is made from the very photos
    attack I's gallery holds.
    """
    _, first = np.unique(np.asarray(ids), return_index=True)
    return np.sort(first)


@dataclass(frozen=True, eq=False)
class Identification:
    """Closed-set identification of outputs in a gallery of originals (attack I)."""

    rates: dict[int, float]  # share of probes whose identity is within the first `rank`
    chance: dict[int, float]  # the same for an attacker who guesses
    n_probes: int  # all probes, including those without a face (they count as misses)
    n_no_face: int
    gallery_size: int  # distinct identities in the gallery
    ranks: np.ndarray = field(repr=False)  # per probe, 1-based; inf without a face

    @property
    def over_chance(self) -> dict[int, float]:
        """How many times better than guessing the attacker is, per rank."""
        return {r: self.rates[r] / self.chance[r] for r in self.rates}


def identify(probe_desc: np.ndarray, probe_ids: Sequence | np.ndarray,
             gallery_desc: np.ndarray, gallery_ids: Sequence | np.ndarray,
             ranks: Sequence[int] = (1, 5)) -> Identification:
    """Rank of each probe's true identity among the gallery identities, by distance.

    An identity's distance is that of its closest gallery image, and the rank is 1 + the
    number of identities strictly closer, so ties go to the attacker. Probes without a face
    (NaN) are misses at every rank.
    """
    probes = np.asarray(probe_desc, np.float64)
    gallery = np.asarray(gallery_desc, np.float64)
    pid, gid = np.asarray(probe_ids), np.asarray(gallery_ids)
    if len(probes) != len(pid) or len(gallery) != len(gid):
        raise ValueError("each descriptor needs one identity")
    if np.isnan(gallery).any():
        raise ValueError("the gallery has descriptors with NaN: drop originals without a face")
    names, gcode = np.unique(gid, return_inverse=True)
    missing = np.setdiff1d(pid, names)
    if missing.size:
        raise ValueError(f"{missing.size} probe identities are not in the gallery "
                         f"(closed-set identification), e.g. {missing[:5].tolist()}")
    if any(int(r) < 1 for r in ranks):
        raise ValueError(f"ranks are 1-based, got {list(ranks)}")
    pcode = np.searchsorted(names, pid)
    order = np.argsort(gcode, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(gcode[order]) != 0])
    gallery = gallery[order]
    result = np.full(len(probes), np.inf)
    for s in range(0, len(probes), _CHUNK):
        d = cdist(probes[s:s + _CHUNK], gallery)
        if len(starts) < len(gallery):  # several images of one identity: keep the closest
            d = np.minimum.reduceat(d, starts, axis=1)
        true = d[np.arange(len(d)), pcode[s:s + _CHUNK]]
        rank = 1.0 + (d < true[:, None]).sum(axis=1)
        result[s:s + _CHUNK] = np.where(np.isnan(true), np.inf, rank)
    n = len(names)
    rates = {int(r): float(np.mean(result <= r)) if len(result) else float("nan")
             for r in ranks}
    chance = {int(r): min(int(r), n) / n for r in ranks}
    return Identification(rates, chance, len(probes), no_face_count(probes), n, result)


@dataclass(frozen=True, eq=False)
class ParrotAttack(Identification):
    """Identification of outputs in a gallery anonymised by the same method ("parrot").

    ``n_probes`` and the rates count only probes whose identity has an anonymised gallery
    face; ``ranks`` keeps one entry per given probe, NaN for those left out.
    """

    n_left_out: int  # probes whose identity has no anonymised gallery face
    n_gallery_no_face: int  # anonymised gallery images on which no face was found

    def rate(self, rank: int = 1, among: np.ndarray | None = None) -> float:
        """Share of probes found within ``rank``, optionally among a mask of the given probes
        (e.g. those whose own photo is not the gallery's); left-out probes do not count."""
        r = self.ranks if among is None else self.ranks[np.asarray(among, bool)]
        r = r[~np.isnan(r)]
        return float(np.mean(r <= rank)) if r.size else float("nan")


def parrot_attack(probe_desc: np.ndarray, probe_ids: Sequence | np.ndarray,
                  anonymised_desc: np.ndarray, gallery_ids: Sequence | np.ndarray,
                  ranks: Sequence[int] = (1, 5)) -> ParrotAttack:
    """The attacker knows the method: it anonymises its gallery photos (``gallery_rows``)
    with the same method and fresh seeds, and ranks identities by their anonymised faces.

    Matching like against like defeats methods that move every face the same way (k-Same,
    blur, the 2022 Fantômas study). Gallery images without a face are dropped, and so are the
    probes of identities left with none: an attacker would simply anonymise that photo again,
    so counting them as misses would flatter the method. Probes without a face are misses.
    """
    gallery = np.asarray(anonymised_desc, np.float64)
    gid = np.asarray(gallery_ids)
    pid = np.asarray(probe_ids)
    probes = np.asarray(probe_desc, np.float64)
    if gallery.ndim != 2 or len(gallery) != len(gid) or len(probes) != len(pid):
        raise ValueError("each descriptor needs one identity")
    missing = np.setdiff1d(pid, gid)
    if missing.size:
        raise ValueError(f"{missing.size} probe identities are not in the gallery "
                         f"(closed-set identification), e.g. {missing[:5].tolist()}")
    face = ~np.isnan(gallery).any(axis=1)
    if not face.any():
        raise ValueError("no anonymised gallery image has a face: nothing to match against")
    kept = np.isin(pid, gid[face])
    found = identify(probes[kept], pid[kept], gallery[face], gid[face], ranks)
    all_ranks = np.full(len(probes), np.nan)
    all_ranks[kept] = found.ranks
    return ParrotAttack(found.rates, found.chance, found.n_probes, found.n_no_face,
                        found.gallery_size, all_ranks, int((~kept).sum()),
                        int((~face).sum()))


@dataclass(frozen=True)
class ClassifierAttack:
    """An attacker trained on labelled outputs identifies other outputs (attack II)."""

    accuracy: float  # the best classifier's: the attacker keeps the strongest
    winner: str  # which classifier that was (the simplest one on a tie)
    by_classifier: dict[str, float]
    chance: float
    n_identities: int
    n_train: int
    n_test: int


def classifier_attack(desc: np.ndarray, ids: Sequence | np.ndarray, seed: int = 0
                      ) -> ClassifierAttack:
    """Train on all but one output of each identity and identify the held-out one.

    Three attackers: nearest centroid (unit descriptors), logistic regression and an RBF SVM
    (standardised descriptors); the SVM finds identities that no hyperplane separates.
    Identities need two outputs with a face; the rest, and NaN rows, are dropped. Choosing
    the best classifier on the test outputs flatters the attacker slightly, which is the
    safe side for a privacy claim.
    """
    x, y = _faces(desc, ids)
    _, code, counts = np.unique(y, return_inverse=True, return_counts=True)
    keep = counts[code] >= 2
    x, code = x[keep], code[keep]
    n_ids = int((counts >= 2).sum())
    if n_ids < 2:
        raise ValueError(f"classifier_attack needs 2 identities with 2 or more faces, got {n_ids}")
    rng = np.random.default_rng(seed)
    order = np.lexsort((rng.random(len(code)), code))  # shuffled within each identity
    first = np.r_[True, np.diff(code[order]) != 0]
    test, train = order[first], order[~first]
    unit = normalize(x)
    scaler = StandardScaler().fit(x[train])
    logistic = LogisticRegression(C=10.0, max_iter=500)  # weak penalty: 1-3 faces a class
    # gamma "scale" is 1 / 128 on standardised descriptors, where two people are ~256 apart
    # squared: their kernel is ~e^-2. One-vs-one over ~1,400 people: ~20 s for 5,000 outputs.
    svm = SVC(kernel="rbf", C=10.0, gamma="scale")
    # Few samples per class is the setting, not a mistake; NearestCentroid's unused spread
    # estimate divides 0 by 0 when every class has one training sample.
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.filterwarnings("ignore", "The number of unique classes", UserWarning)
        centroid = NearestCentroid().fit(unit[train], code[train])
        logistic.fit(scaler.transform(x[train]), code[train])
        svm.fit(scaler.transform(x[train]), code[train])
    accuracy = {
        "nearest_centroid": float(np.mean(centroid.predict(unit[test]) == code[test])),
        "logistic_regression": float(np.mean(
            logistic.predict(scaler.transform(x[test])) == code[test])),
        "rbf_svm": float(np.mean(svm.predict(scaler.transform(x[test])) == code[test])),
    }
    winner = max(accuracy, key=accuracy.__getitem__)  # the first of equals: the simplest
    return ClassifierAttack(accuracy[winner], winner, accuracy, 1.0 / n_ids, n_ids,
                            len(train), len(test))


def _faces(desc: np.ndarray, ids: Sequence | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Descriptors (float64) and identities of the rows that have a face."""
    x = np.asarray(desc, np.float64)
    y = np.asarray(ids)
    if x.ndim != 2 or len(x) != len(y):
        raise ValueError(f"expected (N, D) descriptors and N identities, got {x.shape} "
                         f"and {len(y)}")
    ok = ~np.isnan(x).any(axis=1)
    return x[ok], y[ok]
