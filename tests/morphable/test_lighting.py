"""Spherical-harmonic lighting: recovered from shaded pixels, and taken from a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.morphable.lighting import Lighting, estimate, sh_basis


def sphere_normals(n: int = 4000, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, 3))
    v[:, 2] = np.abs(v[:, 2])  # the half a camera sees
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_known_light_is_recovered_from_shaded_albedo():
    normals = sphere_normals()
    truth = np.zeros((9, 3))
    truth[0] = (2.6, 2.4, 2.2)  # warm ambient
    truth[3] = (0.6, 0.6, 0.6)  # from the right
    truth[2] = (0.4, 0.35, 0.3)  # from the front
    albedo = np.random.default_rng(1).uniform(0.3, 0.8, size=(len(normals), 3))
    observed = albedo * np.clip(sh_basis(normals) @ truth, 0, None)
    light = estimate(normals, observed, albedo, np.ones(len(normals)), ridge=1e-6)
    assert light.residual < 1e-3
    assert np.allclose(light.coefficients[:4], truth[:4], atol=0.05)
    right, left = np.array([0.8, 0, 0.6]), np.array([-0.8, 0, 0.6])
    assert (light.shade(right) > light.shade(left)).all()
    assert light.tint[0] > light.tint[2]  # the warm light's colour survives


def test_too_few_texels_give_even_light_at_the_right_level():
    normals = sphere_normals(50)
    albedo = np.full((50, 3), 0.5)
    light = estimate(normals, albedo * 0.8, albedo, np.ones(50))
    assert np.allclose(light.shade(normals), 0.8, atol=1e-6)
    grey = Lighting(np.tile(np.arange(9.0)[:, None], (1, 3)) * (1, 2, 3), 0.0).grey()
    assert np.allclose(grey.coefficients[:, 0], grey.coefficients[:, 2])


@pytest.mark.data
def test_darkening_one_side_of_a_photo_moves_its_light_to_the_other(utk_face, analyzer,
                                                                     model):
    """The same real face, darkened towards the image's left, reads as lit more from the
    right than the untouched photo does."""
    from studio.core.analysis.landmarks import largest_face
    from studio.core.morphable.relight import UvLayout, photo_lighting
    from studio.core.morphable.texture_map import unwrap

    layout = UvLayout(model)
    face = largest_face(analyzer.analyze(utk_face).faces)
    fit = model.fit(face.landmarks, face.blendshapes)
    fitted = model.posed(fit, fit.identity, fit.expression)
    ramp = np.linspace(0.35, 1.0, utk_face.shape[1])[None, :, None]
    lit_right = np.clip(utk_face * ramp, 0, 255).astype(np.uint8)
    right, left = np.array([0.7, 0, 0.7]), np.array([-0.7, 0, 0.7])

    def balance(rgb: np.ndarray) -> float:
        tex, visible = unwrap(rgb, face.landmarks, layout.raster, model.triangles)
        light = photo_lighting(layout, tex, visible, fitted)
        return float(light.shade(right).mean() / light.shade(left).mean())

    assert balance(lit_right) > 1.3 * balance(utk_face)
