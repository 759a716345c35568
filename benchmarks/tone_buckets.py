"""The skin tone buckets of the strict preset (``skin="bucket"``), derived from the
morphable model's build faces: prints ``TONE_EDGES`` and ``TONE_COLOURS`` for
``studio/core/morphable/relight.py``.

Each colour photo of a seeded sample of the build's images (``training_images``: UTKFace
and GENKI-4K training parts only, never a test face) gives its skin colour as the photo
shows it (``relight.photo_tone``); the buckets are equal quantiles of its luma, each with
the mean colour of the faces in it.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/tone_buckets.py [--buckets 5] [--every 4]
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--buckets", type=int, default=5)
    ap.add_argument("--every", type=int, default=4, help="every n-th build image")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from studio.core.analysis.analyzer import FaceAnalyzer
    from studio.core.analysis.images import load_image
    from studio.core.analysis.landmarks import largest_face
    from studio.core.morphable.build import training_images
    from studio.core.morphable.model import MorphableModel
    from studio.core.morphable.relight import LUMA, UvLayout, photo_tone
    from studio.core.morphable.texture_map import unwrap
    from studio.core.surrogates.compositing import is_grayscale

    model = MorphableModel.load()
    layout = UvLayout(model)
    analyzer = FaceAnalyzer()
    colours, sets = [], []
    for dataset, path in training_images(2000, 1500, 0)[:: args.every]:
        rgb = load_image(path).rgb
        if is_grayscale(rgb):  # no skin colour to give
            continue
        face = largest_face(analyzer.analyze(rgb, recall=False).faces)
        if face is None:
            continue
        tex, visible = unwrap(rgb, face.landmarks, layout.raster, model.triangles)
        colours.append(photo_tone(layout, tex, visible))
        sets.append(dataset)
    analyzer.close()
    c = np.array(colours)
    luma = c @ LUMA
    edges = np.quantile(luma, np.arange(1, args.buckets) / args.buckets)
    which = np.searchsorted(edges, luma)
    print(f"{len(c)} colour build faces ({sets.count('utkface')} UTKFace, "
          f"{sets.count('genki4k')} GENKI-4K); luma mean {luma.mean():.3f}, s.d. {luma.std():.3f}")
    print("TONE_EDGES = (" + ", ".join(f"{e:.3f}" for e in edges) + ")")
    print("TONE_COLOURS = (" + ", ".join(
        "(" + ", ".join(f"{v:.3f}" for v in c[which == k].mean(0)) + ")"
        for k in range(args.buckets)) + ")")
    for k in range(args.buckets):
        print(f"bucket {k}: {int((which == k).sum())} faces")


if __name__ == "__main__":
    main()
