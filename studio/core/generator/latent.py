"""Paths through the generator's latent space (no torch needed)."""

from __future__ import annotations

import numpy as np


def z_for_seed(seed: int, dim: int = 64) -> np.ndarray:
    """The generator's z for an identity seed: the same seed is the same face everywhere."""
    return np.random.default_rng(seed).uniform(-1, 1, dim).astype(np.float32)


def slerp(z0: np.ndarray, z1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation: keeps the norm of uniform z roughly constant on the path."""
    a, b = np.asarray(z0, np.float64), np.asarray(z1, np.float64)
    cos = np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12)
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def interpolate(z0: np.ndarray, z1: np.ndarray, steps: int, mode: str = "slerp") -> np.ndarray:
    """``steps`` latent vectors from z0 to z1 (both ends included), linear or slerp."""
    if mode not in ("slerp", "linear"):
        raise ValueError(f"mode must be 'slerp' or 'linear', not {mode!r}")
    ts = np.linspace(0.0, 1.0, steps)
    if mode == "linear":
        return np.stack([(1 - t) * z0 + t * z1 for t in ts]).astype(np.float32)
    return np.stack([slerp(z0, z1, t) for t in ts]).astype(np.float32)


def mix(z0: np.ndarray, z1: np.ndarray, t: float, mode: str = "slerp") -> np.ndarray:
    """The latent ``t`` of the way from z0 to z1 (float32): how the window blends two
    identity seeds. ``t <= 0`` is z0 itself."""
    if mode not in ("slerp", "linear"):
        raise ValueError(f"mode must be 'slerp' or 'linear', not {mode!r}")
    if t <= 0:
        return z0
    if mode == "linear":
        return ((1 - t) * z0 + t * z1).astype(np.float32)
    return slerp(z0, z1, t).astype(np.float32)
