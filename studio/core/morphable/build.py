"""Build the morphable model from real faces (``studio build-morphable``).

Faces come from the UTKFace training part and the GENKI-4K training split only, never
from the held-out images ``studio evaluate-3d`` uses.

1. Landmarks, blendshapes and pose from the studio's face analysis.
2. Shape: each face's 468 mesh landmarks, turned by its facial transformation matrix into
   the model's axes, then aligned to the running mean by similarity Procrustes (which also
   normalises scale and takes out any rotation the matrix left).
3. Expression basis: vertex offsets regressed (ridge) on the 52 blendshape scores; the
   intercept is the neutral mean shape.
4. Identity basis: PCA of what expression does not explain, with the smile blendshapes'
   shape directions projected out first, so that a sampled identity cannot add or take
   away a smile (it did: 1 in 20 surrogates lost or gained the smile decision).
5. Texture: near-frontal faces unwrapped into the UV layout, averaged into the mean
   texture, and a texture PCA for sampling new identities.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from studio.core.analysis.landmarks import BLENDSHAPE_NAMES
from studio.core.datasets import TrainingManifest
from studio.core.morphable.face_mesh import canonical_mesh
from studio.core.morphable.model import (
    N_MESH,
    SMILE_BLENDSHAPES,
    MorphableModel,
    to_model,
    umeyama,
)
from studio.core.morphable.texture_map import fill_outside, rasterize_uv, unwrap
from studio.core.progress import Progress, track

TEXTURE_SIZE = 128
FRONTAL_DEG = 12.0  # faces turned less than this give texture
MIN_EYE_PX = 28.0  # and have eyes at least this far apart


@dataclass
class Collected:
    shapes: list[np.ndarray]  # (468, 3) model-space landmarks, pose removed roughly
    blendshapes: list[np.ndarray]
    textures: list[np.ndarray]
    weights: list[np.ndarray]
    sources: dict[str, int]
    skipped: int


def training_images(n_utk: int, n_genki: int, seed: int) -> list[tuple[str, object]]:
    """A seeded sample of the build's images: training parts only."""
    from studio.core.datasets import genki, utk_split, utkface

    rng = np.random.default_rng(seed)
    utk = utk_split(utkface(), "train")
    gk = genki("train")
    pick_u = rng.choice(len(utk), size=min(n_utk, len(utk)), replace=False)
    pick_g = rng.choice(len(gk), size=min(n_genki, len(gk)), replace=False)
    return ([("utkface", utk[i].path) for i in sorted(pick_u)]
            + [("genki4k", gk[i].path) for i in sorted(pick_g)])


#: The morphable model's name in training manifests.
MORPHABLE = "morphable"


def training_manifest(images: list[tuple[str, object]]) -> TrainingManifest:
    """The manifest of a build's images (UTKFace and GENKI-4K: no identities)."""
    return TrainingManifest.of_files(MORPHABLE, [(d, Path(str(p)), None) for d, p in images])


def collect(images: list[tuple[str, object]], progress: Progress | None = None) -> Collected:
    from studio.core.analysis.calibration import load_calibration
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import FaceLandmarker, largest_face

    mesh = canonical_mesh()
    raster = rasterize_uv(mesh.uv, mesh.triangles, TEXTURE_SIZE)
    calibration = load_calibration()
    out = Collected([], [], [], [], {}, 0)
    with FaceLandmarker(max_faces=2) as landmarker:
        for source, path in track(images, progress, "faces"):
            try:
                rgb = load_image(path).rgb
            except Exception:  # an unreadable file is counted, not fatal
                out.skipped += 1
                continue
            face = largest_face(landmarker.detect(rgb))
            if face is None:
                out.skipped += 1
                continue
            pts = to_model(face.landmarks[:N_MESH])
            rot = np.asarray(face.transform)[:3, :3]
            rot = rot / np.cbrt(np.linalg.det(rot))  # drop any scale in the matrix
            out.shapes.append((pts - pts.mean(0)) @ rot)  # R^T p: undo the head's rotation
            out.blendshapes.append(np.asarray(face.blendshapes, np.float64))
            out.sources[source] = out.sources.get(source, 0) + 1
            yaw, pitch, _ = calibration.pose(face.transform)
            eyes = np.linalg.norm(face.landmarks[33, :2] - face.landmarks[263, :2])
            if abs(yaw) < FRONTAL_DEG and abs(pitch) < FRONTAL_DEG and eyes >= MIN_EYE_PX:
                tex, w = unwrap(rgb, face.landmarks, raster, mesh.triangles)
                out.textures.append(tex)
                out.weights.append(w)
    return out


def procrustes_align(shapes: list[np.ndarray], reference: np.ndarray,
                     rounds: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Generalised Procrustes: every shape aligned to the mean, the mean kept at the
    reference's size. Returns the aligned shapes (N, 468, 3) and the rotation angle (deg)
    each alignment still needed after the transformation matrix."""
    mean = reference.copy()
    aligned = np.stack(shapes)
    angles = np.zeros(len(shapes))
    for _ in range(rounds):
        for i, shape in enumerate(shapes):
            s, r, t = umeyama(shape, mean)
            aligned[i] = s * shape @ r.T + t
            angles[i] = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
        new_mean = aligned.mean(0)
        s, r, t = umeyama(new_mean, reference)
        mean = s * new_mean @ r.T + t
    return aligned, angles


def build(n_utk: int = 2000, n_genki: int = 1500, k_identity: int = 40, k_texture: int = 40,
          seed: int = 0, progress: Progress | None = None,
          manifest_to: Path | None = None) -> MorphableModel:
    """The model; with ``manifest_to``, its training manifest is written there
    (``datasets.manifest_path`` of the weights)."""
    t0 = time.perf_counter()
    mesh = canonical_mesh()
    images = training_images(n_utk, n_genki, seed)
    data = collect(images, progress=progress)
    reference = mesh.vertices.astype(np.float64)
    aligned, angles = procrustes_align(data.shapes, reference)
    n = len(aligned)
    x = aligned.reshape(n, -1)
    b = np.stack(data.blendshapes)

    # Expression: x = neutral + b @ E (ridge, intercept unpenalised).
    b_mean, x_mean = b.mean(0), x.mean(0)
    bc, xc = b - b_mean, x - x_mean
    ridge = 1e-3 * n
    expr = np.linalg.solve(bc.T @ bc + ridge * np.eye(b.shape[1]), bc.T @ xc)  # (52, 1404)
    neutral = x_mean - b_mean @ expr
    resid = xc - bc @ expr
    total_var = float((xc ** 2).sum())
    expr_explained = 1 - float((resid ** 2).sum()) / total_var

    # Identity: PCA of the rest (SVD of the centred residuals), orthogonal to the smile.
    smile = [BLENDSHAPE_NAMES.index(name) for name in SMILE_BLENDSHAPES]
    q, _ = np.linalg.qr(expr[smile].T)
    resid -= resid.mean(0)
    before = float((resid ** 2).sum())
    resid -= (resid @ q) @ q.T
    kept_after_smile = float((resid ** 2).sum()) / before
    _, sing, vt = np.linalg.svd(resid, full_matrices=False)
    var = sing ** 2 / (n - 1)
    k = min(k_identity, len(var))
    identity = vt[:k] * np.sqrt(var[:k])[:, None]
    id_cum = np.cumsum(var) / var.sum()

    # Texture: weighted mean and PCA of the near-frontal faces.
    raster = rasterize_uv(mesh.uv, mesh.triangles, TEXTURE_SIZE)
    tex = np.stack(data.textures).astype(np.float32) / 255  # (Nt, T, T, 3)
    w = np.stack(data.weights)[..., None]
    mean_tex = (tex * w).sum(0) / np.maximum(w.sum(0), 1e-6)
    # Where a face hid a texel, use the mean instead, so PCA models identity, not occlusion.
    filled = tex * w + mean_tex * (1 - w)
    mean_u8 = fill_outside(np.round(mean_tex * 255).astype(np.uint8), raster)
    flat = (filled - mean_tex).reshape(len(tex), -1)
    _, tsing, tvt = np.linalg.svd(flat, full_matrices=False)
    tvar = tsing ** 2 / (len(tex) - 1)
    kt = min(k_texture, len(tvar))
    tex_basis = (tvt[:kt] * np.sqrt(tvar[:kt])[:, None]).reshape(kt, *mean_tex.shape)
    tex_basis *= raster.inside[None, :, :, None]
    tex_cum = np.cumsum(tvar) / tvar.sum()

    info = {
        "faces": n, "sources": data.sources, "skipped_no_face": data.skipped,
        "texture_faces": len(tex), "texture_size": TEXTURE_SIZE, "seed": seed,
        "frontal_deg": FRONTAL_DEG,
        "residual_rotation_deg_median": round(float(np.median(angles)), 2),
        "variance_explained": {
            "expression_of_total": round(expr_explained, 4),
            "identity_of_rest": {str(c): round(float(id_cum[c - 1]), 4)
                                 for c in (5, 10, 20, k) if c <= len(id_cum)},
            "identity_k": k,
            "identity_kept_after_removing_smile_directions": round(kept_after_smile, 4),
            "texture": {str(c): round(float(tex_cum[c - 1]), 4)
                        for c in (5, 10, 20, kt) if c <= len(tex_cum)},
            "texture_k": kt,
        },
        "build_seconds": round(time.perf_counter() - t0, 1),
        "held_out": "GENKI-4K test split and every 23rd UTKFace image are never used",
        "n_utk": n_utk, "n_genki": n_genki,
    }
    if manifest_to is not None:
        training_manifest(images).save(manifest_to)
    return MorphableModel(neutral.reshape(N_MESH, 3), expr.reshape(-1, N_MESH, 3),
                          identity.reshape(k, N_MESH, 3), mean_u8.astype(np.float32) / 255,
                          tex_basis.astype(np.float32), mesh.uv.astype(np.float32),
                          mesh.triangles.astype(np.int32), info)
