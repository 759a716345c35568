"""Figures of the in-context surrogate for the README.

``docs/incontext.png`` (committed): the public-domain demo face (NASA's astronaut
portrait, skimage) as original, GAN surrogate, 3D surrogate and in-context surrogate,
then the in-context face with its sliders moved. ``docs/incontext_group.png``
(committed): a group photo made of the demo face, every face replaced.

``--research`` also draws 8 held-out UTKFace faces the same way, and the generator's
real-against-generated grid (the thesis's Fig. 4.4: held-out faces over generated faces
with their labels), into ``docs/figures-local/`` (git-ignored): the research data may not
be committed, so those figures stay on the machine that has ../shared/data.

Run: ``make figures`` or ``.venv/bin/python docs/make_figures.py [--research]``.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from studio.core.analysis.framing import original_crop
from studio.core.analysis.images import LoadedImage
from studio.core.analysis.landmarks import largest_face
from studio.core.generator.latent import z_for_seed
from studio.core.morphable.surrogate import Request3D
from studio.core.surrogates.engine import SurrogateEngine
from studio.core.surrogates.incontext import ContextRequest

TILE = 256
LABELS = ("original", "GAN surrogate", "3D surrogate", "in context")


def label(tile: np.ndarray, text: str) -> np.ndarray:
    out = tile.copy()
    cv2.rectangle(out, (0, TILE - 22), (TILE, TILE), (255, 255, 255), -1)
    cv2.putText(out, text, (6, TILE - 7), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (20, 20, 20), 1,
                cv2.LINE_AA)
    return out


def row(engine: SurrogateEngine, rgb: np.ndarray, seed: int, extra: bool) -> np.ndarray:
    image = LoadedImage(rgb, "<figure>", "RGB", False)
    face = largest_face(engine.analyze(image).faces)
    a = face.attributes
    gan = engine.generator.sample(a, z=z_for_seed(seed)[None])[0]
    three = engine.surrogate3d(image, face, Request3D(identity=seed, size=TILE)).image
    context = engine.in_context(image, [face], ContextRequest(seed=seed)).image
    tiles = [original_crop(rgb, face.landmarks, TILE), cv2.resize(gan, (TILE, TILE)),
             three, original_crop(context, face.landmarks, TILE)]
    names = list(LABELS)
    if extra:
        for text, t in (("joy 0.05", replace(a, joy=0.05)), ("joy 0.95", replace(a, joy=0.95)),
                        ("yaw +15", replace(a, yaw=a.yaw + 15)),
                        ("P(male) 0.9", replace(a, p_male=0.9))):
            out = engine.in_context(image, [face], ContextRequest(seed=seed, targets=t),
                                    verify=False).image
            tiles.append(original_crop(out, face.landmarks, TILE))
            names.append(f"in context, {text}")
    return np.hstack([label(t, n) for t, n in zip(tiles, names, strict=True)])


def group(engine: SurrogateEngine, rgb: np.ndarray) -> np.ndarray:
    face = largest_face(engine.analyze(LoadedImage(rgb, "<figure>", "RGB", False)).faces)
    crop = original_crop(rgb, face.landmarks, 220)
    canvas = np.full((300, 4 * 240 + 20, 3), 120, np.uint8)
    variants = [crop, crop[:, ::-1], cv2.convertScaleAbs(crop, alpha=0.8, beta=10),
                cv2.resize(crop, (180, 180))]
    for k, v in enumerate(variants):
        y, x = 40 + (220 - v.shape[0]) // 2, 20 + 240 * k
        canvas[y:y + v.shape[0], x:x + v.shape[1]] = v
    image = LoadedImage(canvas, "<group>", "RGB", False)
    faces = engine.analyze(image).faces
    out = engine.in_context(image, faces, ContextRequest(seed=3)).image
    print(f"group photo: {len(faces)} faces found")
    return np.vstack([canvas, out])


def save(rgb: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path)
    print(f"saved {path} ({rgb.shape[1]}x{rgb.shape[0]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--research", action="store_true")
    args = parser.parse_args()
    from skimage import data

    engine = SurrogateEngine()
    try:
        astronaut = np.ascontiguousarray(data.astronaut())
        save(row(engine, astronaut, 7, extra=True), Path("docs/incontext.png"))
        save(group(engine, astronaut), Path("docs/incontext_group.png"))
        if args.research:
            from studio.core.analysis.images import load_image
            from studio.core.datasets import utk_split, utkface

            items = utk_split(utkface(), "test")
            picks = [items[i] for i in np.random.default_rng(4).choice(len(items), 8,
                                                                        replace=False)]
            rows = [row(engine, load_image(it.path).rgb, 100 + k, extra=False)
                    for k, it in enumerate(picks)]
            save(np.vstack(rows), Path("docs/figures-local/incontext_heldout.png"))
            from studio.core.evaluation.held_out import held_out
            from studio.core.evaluation.sources import spread
            from studio.core.generator.report import real_vs_generated
            from studio.core.generator.training_data import GENERATOR

            sources = spread(held_out(engine.generator.path, GENERATOR).unseen(), 16)
            grid = real_vs_generated(engine.generator, engine.analyzer,
                                     [s.path for s in sources])
            save(np.asarray(grid), Path("docs/figures-local/generator_real_vs_generated.png"))
    finally:
        engine.close()


if __name__ == "__main__":
    main()
