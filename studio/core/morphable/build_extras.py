"""Build the in-context surrogate's extras (``studio build-morphable --extras``) from the
morphable model's own training faces: UTKFace's training part only, never a held-out face.

One pass over the faces: the studio's analysis (landmarks, blendshapes, P(male), joy), the
model's fit (shape coefficients), the unwrapped texture (texture coefficients and its
high-pass).
"""

from __future__ import annotations

import time

import cv2
import numpy as np

from studio.core.morphable.build import FRONTAL_DEG, MIN_EYE_PX, training_images
from studio.core.morphable.extras import DETAIL_SIGMA, GenderAxis, ModelExtras, SmileAxis
from studio.core.morphable.model import MorphableModel
from studio.core.morphable.texture_map import rasterize_uv, unwrap
from studio.core.progress import Progress, track


def build_extras(model: MorphableModel, n_utk: int = 2000, seed: int = 0,
                 progress: Progress | None = None) -> ModelExtras:
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.analysis.images import load_image

    t0 = time.perf_counter()
    images = [p for d, p in training_images(n_utk, 0, seed) if d == "utkface"]
    raster = rasterize_uv(model.uv, model.triangles, model.mean_texture.shape[0])
    shape, texture, p_male, joy = [], [], [], []
    detail_sum = np.zeros(raster.triangle.shape)
    weight_sum = np.zeros(raster.triangle.shape)
    skipped = 0
    with FaceAnalyzer(identity=False, max_faces=2) as analyzer:
        for path in track(images, progress, "faces"):
            try:
                image = load_image(path)
                faces = analyzer.analyze(image).faces
            except Exception:  # an unreadable training file is counted, not fatal
                skipped += 1
                continue
            if not faces:
                skipped += 1
                continue
            face = max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
            a = face.attributes
            fit = model.fit(face.landmarks, face.blendshapes)
            tex, w = unwrap(image.rgb, face.landmarks, raster, model.triangles)
            shape.append(fit.identity)
            texture.append(model.project_texture(tex, w))
            p_male.append(a.p_male)
            joy.append(a.joy)
            eyes = np.linalg.norm(face.landmarks[33, :2] - face.landmarks[263, :2])
            if abs(a.yaw) < FRONTAL_DEG and abs(a.pitch) < FRONTAL_DEG and eyes >= MIN_EYE_PX:
                lum = cv2.cvtColor(tex, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255
                high = lum - cv2.GaussianBlur(lum, (0, 0), DETAIL_SIGMA)
                full = (w > 0.5).astype(np.float64)
                detail_sum += full * high.astype(np.float64) ** 2
                weight_sum += full
    axis = GenderAxis.fit(np.array(shape), np.array(texture), np.array(p_male))
    smile = SmileAxis.fit(np.array(texture), np.array(joy))
    detail = np.sqrt(detail_sum / np.maximum(weight_sum, 1))
    detail = cv2.GaussianBlur(detail.astype(np.float32), (0, 0), 2.0)
    male = np.array(p_male) >= 0.5
    info = {"faces": len(shape), "skipped": skipped, "read_as_male": int(male.sum()),
            "read_as_smiling": int((np.array(joy) >= 0.5).sum()),
            "read_as_female": int((~male).sum()), "detail_faces": int(weight_sum.max()),
"detail_sigma_texels": DETAIL_SIGMA,
"seed": seed, "utk_images": len(images),
            "seconds": round(time.perf_counter() - t0, 1)}
    return ModelExtras(axis, detail, info, smile)
