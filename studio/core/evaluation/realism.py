"""Realism, measured: how far a method's faces are from real ones, beside the same figure
for two halves of the real faces (the real-versus-real reference).

Every image is measured at one size, ``REALISM_SIZE`` (the GAN's native 64 px), in the
canonical crop framing (:mod:`studio.core.analysis.framing`): larger images are reduced with
area interpolation. Per image (:func:`realism_features`): dlib's 128-d face descriptor and
the pooled mid-level stage of the same network, both on the crop resized to the net's
150 px input without alignment (every method is treated alike); whether dlib's HOG detector
finds a face; and the sharpness (mean squared Laplacian). Per set (:func:`realism`): HOG
face-found rate, Fréchet distance and KID on both feature spaces, a classifier two-sample
test (C2ST: 0.5 = indistinguishable) and the sharpness ratio.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache

import cv2
import numpy as np

from studio.core.errors import StudioError

#: The one size every method's faces are measured at (the GAN's native size).
REALISM_SIZE = 64
#: dlib's HOG window is 80 px: a 64 px crop is upsampled twice (to 256 px) before detection.
HOG_UPSAMPLE = 2
#: KID as in Binkowski et al. / clean-fid: the mean over subsets of unbiased MMD².
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
C2ST_FOLDS = 5


@dataclass
class RealismFeatures:
    """Per-image realism features of a set; row ``i`` belongs to image ``i``."""

    descriptor: np.ndarray  # (N, 128) float32
    pooled: np.ndarray  # (N, 128) float32: POOLED_STAGE of the dlib ResNet, averaged
    hog_found: np.ndarray  # (N,) bool
    sharpness: np.ndarray  # (N,) float64: mean squared Laplacian, gray in 0..1

    def __len__(self) -> int:
        return len(self.hog_found)

    def subset(self, index: np.ndarray | list[int]) -> RealismFeatures:
        i = np.asarray(index, dtype=np.int64)
        return RealismFeatures(self.descriptor[i], self.pooled[i], self.hog_found[i],
                               self.sharpness[i])

    def rows(self) -> list[dict]:
        """One JSON-ready dict per image (for a cache): lists of floats, a bool, a float."""
        return [{"descriptor": d.tolist(), "pooled": p.tolist(), "hog_found": bool(h),
                 "sharpness": float(s)} for d, p, h, s in
                zip(self.descriptor, self.pooled, self.hog_found, self.sharpness, strict=True)]

    @classmethod
    def from_rows(cls, rows: list[dict]) -> RealismFeatures:
        if not rows:
            return cls(np.empty((0, 128), np.float32), np.empty((0, 128), np.float32),
                       np.empty(0, bool), np.empty(0))
        return cls(np.asarray([r["descriptor"] for r in rows], np.float32),
                   np.asarray([r["pooled"] for r in rows], np.float32),
                   np.asarray([r["hog_found"] for r in rows], bool),
                   np.asarray([r["sharpness"] for r in rows], np.float64))

    @classmethod
    def concat(cls, parts: list[RealismFeatures]) -> RealismFeatures:
        if not parts:
            return cls.from_rows([])
        return cls(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                     ("descriptor", "pooled", "hog_found", "sharpness")))


# ----------------------------------------------------------------------------------------
# Per image


def to_realism_size(rgb: np.ndarray) -> np.ndarray:
    """A square face crop at ``REALISM_SIZE``: area interpolation down, cubic up."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.shape[0] != rgb.shape[1]:
        raise StudioError(f"expected a square RGB face crop, got shape {rgb.shape}")
    if rgb.shape[0] == REALISM_SIZE:
        return np.ascontiguousarray(rgb, dtype=np.uint8)
    interp = cv2.INTER_AREA if rgb.shape[0] > REALISM_SIZE else cv2.INTER_CUBIC
    return cv2.resize(rgb, (REALISM_SIZE, REALISM_SIZE), interpolation=interp)


@lru_cache(maxsize=1)
def _encoder():
    import torch

    from studio.core.analysis.dlib_resnet import DlibFaceEncoder

    return DlibFaceEncoder(threads=torch.get_num_threads())  # keep the caller's threads


_detectors = threading.local()  # dlib's detector object is not shared across threads


def _hog_detector():
    if not hasattr(_detectors, "hog"):
        import dlib

        _detectors.hog = dlib.get_frontal_face_detector()
    return _detectors.hog


def sharpness(crop: np.ndarray) -> float:
    """High-frequency energy: the mean squared Laplacian of the gray crop (0..1 scale)."""
    gray = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    return float(np.mean(cv2.Laplacian(gray, cv2.CV_32F, ksize=1) ** 2))


def realism_features(crops: np.ndarray | list[np.ndarray], encoder=None) -> RealismFeatures:
    """Realism features of face crops in the canonical framing, any square size (each is
    brought to ``REALISM_SIZE`` first). ``encoder``: a ``DlibFaceEncoder`` to reuse;
    by default one shared by the process."""
    small = [to_realism_size(c) for c in crops]
    if not small:
        return RealismFeatures.from_rows([])
    encoder = encoder or _encoder()
    rows, cols = encoder.model.input_size
    chips = np.stack([cv2.resize(c, (cols, rows), interpolation=cv2.INTER_CUBIC)
                      for c in small])
    descriptor, pooled = encoder.features(chips)
    hog = _hog_detector()
    found = np.array([len(hog(c, HOG_UPSAMPLE)) > 0 for c in small], bool)
    sharp = np.array([sharpness(c) for c in small], np.float64)
    return RealismFeatures(descriptor, pooled, found, sharp)


# ----------------------------------------------------------------------------------------
# Per set


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (as in FID)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu = a.mean(axis=0) - b.mean(axis=0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr sqrt(ca cb) = sum of sqrt eigenvalues of the symmetric sqrt(ca) cb sqrt(ca):
    # exact for covariances, and far quicker and steadier than scipy's sqrtm.
    w, v = np.linalg.eigh(ca)
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(root @ cb @ root), 0, None)).sum()
    return float(mu @ mu + np.trace(ca) + np.trace(cb) - 2 * tr_covmean)


def kid(a: np.ndarray, b: np.ndarray, seed: int = 0, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE) -> float:
    """Kernel inception distance: unbiased MMD² with k(x, y) = (x·y / d + 1)³, averaged
    over random subsets of ``min(subset_size, len(a), len(b))`` images of each set."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    m = min(subset_size, len(a), len(b))
    if m < 2:
        return float("nan")
    d = a.shape[1]
    if m == len(a) == len(b):
        subsets = 1  # every subset would be the whole of both sets
    rng = np.random.default_rng(seed)
    total = 0.0
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        total += ((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                  + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * kxy.mean())
    return float(total / subsets)


def c2st(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Classifier two-sample test: stratified 5-fold accuracy of a logistic regression on
    standardised features telling ``a`` from ``b`` (the larger set is subsampled to the
    smaller, so chance is 0.5)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < C2ST_FOLDS:
        return float("nan")
    a = a[rng.choice(len(a), n, replace=False)]
    b = b[rng.choice(len(b), n, replace=False)]
    x = np.concatenate([a, b]).astype(np.float64)
    y = np.repeat([0, 1], n)
    model = make_pipeline(StandardScaler(), LogisticRegression(solver="liblinear"))
    folds = StratifiedKFold(C2ST_FOLDS, shuffle=True, random_state=seed)
    return float(cross_val_score(model, x, y, cv=folds, scoring="accuracy").mean())


@dataclass
class RealismResult:
    """A method's realism against held-out reals; ``reference``: the same between two
    halves of the reals. ``n``: outputs, ``n_reals``: reals."""

    n: int
    n_reals: int
    face_found: float
    face_found_reals: float
    fd: float
    fd_pooled: float
    kid: float
    kid_pooled: float
    c2st: float
    c2st_pooled: float
    sharpness_ratio: float
    #: The pixel-space CNN two-sample test (``pixel_c2st``); NaN where the chips were not
    #: kept (figures rebuilt from a cache).
    pixel_c2st: float = float("nan")
    reference: RealismResult | None = field(default=None)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["reference"] = None if self.reference is None else self.reference.to_dict()
        return d

    def ratio(self, key: str) -> float:
        """This figure over the reference's (KID and FD: how many times real-vs-real)."""
        ref = getattr(self.reference, key) if self.reference else float("nan")
        return float(getattr(self, key) / ref) if ref else float("nan")


def _compare(out: RealismFeatures, reals: RealismFeatures, seed: int) -> dict[str, float]:
    return {"fd": frechet_distance(out.descriptor, reals.descriptor),
            "fd_pooled": frechet_distance(out.pooled, reals.pooled),
            "kid": kid(out.descriptor, reals.descriptor, seed),
            "kid_pooled": kid(out.pooled, reals.pooled, seed),
            "c2st": c2st(out.descriptor, reals.descriptor, seed),
            "c2st_pooled": c2st(out.pooled, reals.pooled, seed)}


def _sharpness_ratio(out: RealismFeatures, reals: RealismFeatures) -> float:
    return float(out.sharpness.mean() / reals.sharpness.mean())


def realism(outputs: RealismFeatures, reals: RealismFeatures, seed: int = 0,
            sources: np.ndarray | list[int] | None = None) -> RealismResult:
    """Outputs against reals, beside reals against reals.

    The reals are split in two seeded halves A and B; the reference compares A with B.
    So that the figures are like for like (same sizes, never an output against the real
    it was made from), the outputs made from A are compared with B, those made from B
    with A, and the two averaged. ``sources[i]``: the index in ``reals`` of the face output
    ``i`` was made from; None when they are unrelated (the outputs are then split at random).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small matrices: BLAS threads only wait for each other
        return _realism(outputs, reals, seed, sources)


def _realism(outputs: RealismFeatures, reals: RealismFeatures, seed: int,
             sources: np.ndarray | list[int] | None) -> RealismResult:
    if len(reals) < 2 * C2ST_FOLDS or len(outputs) < 2 * C2ST_FOLDS:
        raise StudioError(f"realism needs at least {2 * C2ST_FOLDS} reals and outputs, "
                          f"got {len(reals)} and {len(outputs)}")
    rng = np.random.default_rng(seed)
    half = np.zeros(len(reals), bool)
    half[rng.permutation(len(reals))[: len(reals) // 2]] = True
    if sources is None:
        out_half = np.zeros(len(outputs), bool)
        out_half[rng.permutation(len(outputs))[: len(outputs) // 2]] = True
    else:
        out_half = half[np.asarray(sources, dtype=np.int64)]
    a, b = reals.subset(np.flatnonzero(half)), reals.subset(np.flatnonzero(~half))
    oa, ob = (outputs.subset(np.flatnonzero(out_half)),
              outputs.subset(np.flatnonzero(~out_half)))
    ref = _compare(a, b, seed)
    reference = RealismResult(len(a), len(b), float(a.hog_found.mean()),
                              float(b.hog_found.mean()), sharpness_ratio=_sharpness_ratio(a, b),
                              **ref)
    pairs = [(o, r) for o, r in ((oa, b), (ob, a)) if len(o) >= 2 * C2ST_FOLDS]
    if not pairs:
        raise StudioError("realism: too few outputs made from either half of the reals")
    figures = [_compare(o, r, seed) for o, r in pairs]
    mean = {k: float(np.mean([f[k] for f in figures])) for k in ref}
    return RealismResult(len(outputs), len(reals), float(outputs.hog_found.mean()),
                         float(reals.hog_found.mean()),
                         sharpness_ratio=_sharpness_ratio(outputs, reals),
                         reference=reference, **mean)


# ----------------------------------------------------------------------------------------
# A study: held-out reals, each method's output for each, measured


def method_crop(engine, key: str, image, face, seed: int) -> np.ndarray:
    """One method's face for ``face`` at ``REALISM_SIZE`` in the canonical framing:
    "original" (the real crop), a crop method's own face, or the face cropped from the
    photo of a method that replaces inside it."""
    from studio.core.analysis.framing import CropFrame, original_crop
    from studio.core.evaluation.methods import ORIGINAL
    from studio.core.surrogates.registry import REGISTRY

    if key == ORIGINAL.key:
        rgb = image.rgb
    else:
        rgb = REGISTRY.maker(key).make(engine, image, face, [seed])[0]
        if not REGISTRY[key].in_photo:
            return to_realism_size(rgb)
    # crop at the face's own scale, then reduce with area interpolation like the renders
    side = max(REALISM_SIZE, round(CropFrame.from_landmarks(face.landmarks).side))
    return to_realism_size(original_crop(rgb, face.landmarks, side))


@dataclass
class RealismStudy:
    """One data set: its reals, each method's outputs (``sources``: the real each output
    was made from) and each method's result."""

    dataset: str
    reals: RealismFeatures
    outputs: dict[str, RealismFeatures]
    sources: dict[str, np.ndarray]
    results: dict[str, RealismResult]
    skipped: list[str]


def study_realism(engine, dataset, methods: list[str], workers: int = 1, seed: int = 0,
                  progress=None, pixel: bool = True) -> RealismStudy:
    """Every face of ``dataset`` (an evaluation ``Dataset``) and each method's output for
    it (the surrogate seed as ``studio evaluate`` draws it), measured for realism; with
    ``pixel``, also by a CNN trained on the chips themselves (``pixel_c2st``)."""
    from concurrent.futures import ThreadPoolExecutor

    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face
    from studio.core.assets import sha256_of
    from studio.core.surrogates.making import candidate_seed

    def make(source) -> dict[str, np.ndarray] | str:
        try:
            image = load_image(source.path)
            face = largest_face(engine.analyzer.analyze(image).faces)
            if face is None:
                return f"{source.name}: no face found"
            face_seed = candidate_seed(sha256_of(source.path), 0, 0)
            return {k: method_crop(engine, k, image, face, face_seed)
                    for k in ("original", *methods)}
        except (StudioError, OSError) as exc:
            return f"{source.name}: {exc}"

    crops: dict[str, list[np.ndarray]] = {k: [] for k in ("original", *methods)}
    skipped: list[str] = []
    total = len(dataset.sources)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, made in enumerate(pool.map(make, dataset.sources), 1):
            if isinstance(made, str):
                skipped.append(made)
            else:
                for k, c in made.items():
                    crops[k].append(c)
            if progress:
                progress(done, total, f"realism, {dataset.name}: faces made")
    features = {}
    for i, (k, cs) in enumerate(crops.items(), 1):
        features[k] = realism_features(np.stack(cs) if cs else [])
        if progress:
            progress(i, len(crops), f"realism, {dataset.name}: measured")
    reals = features.pop("original")
    sources = {k: np.arange(len(reals)) for k in features}  # one output per real face
    results = {k: realism(f, reals, seed, sources[k]) for k, f in features.items()}
    if pixel and len(crops["original"]) >= 20:
        results = _with_pixel_c2st(results, crops, seed, progress, dataset.name)
    return RealismStudy(dataset.name, reals, features, sources, results, skipped)


def _with_pixel_c2st(results: dict[str, RealismResult], crops: dict[str, list[np.ndarray]],
                     seed: int, progress, name: str) -> dict[str, RealismResult]:
    """Each result with the pixel-space CNN test beside its real-vs-real reference."""
    from dataclasses import replace

    from studio.core.evaluation.pixel_c2st import pixel_c2st, real_halves

    reals = np.stack(crops["original"])
    reference = real_halves(reals, seed)
    out = {}
    for i, (k, r) in enumerate(results.items(), 1):
        value = pixel_c2st(np.stack(crops[k]), reals, seed) if crops[k] else float("nan")
        ref = replace(r.reference, pixel_c2st=reference) if r.reference else None
        out[k] = replace(r, pixel_c2st=value, reference=ref)
        if progress:
            progress(i, len(results), f"realism, {name}: pixel-space test")
    return out


__all__ = ["REALISM_SIZE", "RealismFeatures", "RealismResult", "RealismStudy", "c2st",
           "frechet_distance", "kid", "method_crop", "realism", "realism_features",
           "sharpness", "study_realism", "to_realism_size"]
