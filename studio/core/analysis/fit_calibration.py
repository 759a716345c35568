"""Fit the joy model and the pose calibration on the GENKI-4K training split."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from studio.core.analysis.calibration import Calibration, raw_euler
from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import FaceLandmarker, largest_face
from studio.core.datasets import TrainingManifest, genki
from studio.core.progress import Progress, track


def genki_features(split: str, landmarker: FaceLandmarker, progress: Progress | None = None):
    """Blendshapes, raw Euler angles and labels of the GENKI faces that were detected."""
    items = genki(split)
    shapes, euler, labels, missed = [], [], [], 0
    for item in track(items, progress, f"GENKI-4K {split}"):
        faces = landmarker.detect(load_image(item.path).rgb)
        if not faces:
            missed += 1
            continue
        # A tight crop holds one subject; take the largest face if there are more.
        face = largest_face(faces)
        shapes.append(face.blendshapes)
        euler.append(raw_euler(face.transform))
        labels.append((item.smile, item.yaw, item.pitch, item.roll))
    return np.array(shapes), np.array(euler), np.array(labels), len(items), missed


#: The calibration's name in training manifests.
CALIBRATION = "calibration"


def training_manifest() -> TrainingManifest:
    """Every image the fit reads: the GENKI-4K training split."""
    return TrainingManifest.of_files(CALIBRATION,
                                     [("genki4k", it.path, None) for it in genki("train")])


def fit(progress: Progress | None = None, manifest_to: Path | None = None) -> Calibration:
    """The fitted calibration; with ``manifest_to``, its training manifest is written there
    (``datasets.manifest_path`` of the JSON)."""
    from sklearn.linear_model import HuberRegressor, LogisticRegressionCV

    with FaceLandmarker() as landmarker:
        shapes, euler, labels, total, missed = genki_features("train", landmarker, progress)
    joy = LogisticRegressionCV(Cs=10, cv=5, max_iter=5000, scoring="neg_log_loss",
                               use_legacy_attributes=False).fit(shapes, labels[:, 0])
    slope, intercept = np.zeros(3), np.zeros(3)
    for k in range(3):
        # Huber, because GENKI-4K has mislabelled poses and a few non-face crops.
        huber = HuberRegressor().fit(euler[:, [k]], labels[:, 1 + k])
        slope[k], intercept[k] = huber.coef_[0], huber.intercept_
    c_value = float(np.ravel(joy.C_)[0])
    info = {
        "fitted_on": "GENKI-4K training split (test_split.txt held out)",
        "images": total,
        "faces_detected": total - missed,
        "joy_model": f"logistic regression on the 52 blendshapes, C={c_value:.4g}",
        "pose_model": "GENKI angle = slope * MediaPipe extrinsic yxz Euler angle + intercept "
                      "(Huber)",
        "licence": "derived from GENKI-4K: non-commercial research use only",
    }
    coef = np.ravel(joy.coef_).astype(float)
    if manifest_to is not None:
        training_manifest().save(manifest_to)
    return Calibration(coef, float(np.ravel(joy.intercept_)[0]), slope, intercept, info)
