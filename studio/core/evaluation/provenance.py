"""Which of the shipped models saw which photos and people in training: their training
manifests (``datasets.TrainingManifest``, beside each model's weights), loaded once, and
rewritten from the very selection functions and parameters the shipped models were built
with (``studio manifests``)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from studio.core.datasets import ManifestEntry, TrainingManifest, manifest_path
from studio.core.progress import Progress, track

#: The shipped morphable model was built with ``studio build-morphable``'s defaults
#: (models/morphable/README.md); newer builds record these in their ``info``.
MORPHABLE_SHIPPED_COUNTS = {"n_utk": 2000, "n_genki": 1500}


def shipped_weights() -> dict[str, Path]:
    """Model name -> the weights the studio ships (its manifest lies beside them)."""
    from studio.core.analysis.calibration import CALIBRATION_FILE
    from studio.core.analysis.fit_calibration import CALIBRATION
    from studio.core.generator.sampler import DEFAULT_WEIGHTS
    from studio.core.generator.training_data import GENERATOR
    from studio.core.morphable.build import MORPHABLE
    from studio.core.morphable.model import MORPHABLE_FILE

    return {GENERATOR: DEFAULT_WEIGHTS, MORPHABLE: MORPHABLE_FILE, CALIBRATION: CALIBRATION_FILE}


@cache
def shipped_manifests() -> dict[str, TrainingManifest | None]:
    """Each shipped model's training manifest, or None where it has none (loaded once)."""
    out: dict[str, TrainingManifest | None] = {}
    for model, weights in shipped_weights().items():
        where = manifest_path(weights)
        out[model] = TrainingManifest.load(where) if where.is_file() else None
    return out


def morphable_parameters(weights: Path | None = None) -> dict[str, int]:
    """n_utk, n_genki and seed of a morphable build, from the file's ``info``."""
    from safetensors import safe_open

    from studio.core.errors import StudioError
    from studio.core.morphable.model import MORPHABLE_FILE

    with safe_open(str(weights or MORPHABLE_FILE), "np") as fh:
        info = json.loads(fh.metadata()["info"])
    params = {k: int(info.get(k, v)) for k, v in MORPHABLE_SHIPPED_COUNTS.items()}
    params["seed"] = int(info["seed"])
    read = sum(info["sources"].values()) + info["skipped_no_face"]
    if read != params["n_utk"] + params["n_genki"]:
        raise StudioError(f"the morphable model read {read} images, not the "
                          f"{params['n_utk']} + {params['n_genki']} its parameters select")
    return params


def shipped_selections() -> dict[str, list[tuple[str, Path, int | None]]]:
    """(data set, path, identity) of every image each shipped model's build read."""
    from studio.core.analysis.fit_calibration import CALIBRATION
    from studio.core.datasets import genki
    from studio.core.generator.training_data import GENERATOR, SOURCE_DATASETS, training_items
    from studio.core.morphable.build import MORPHABLE, training_images

    return {
        # The default generator trained on the celeba-id "train" identities only (the
        # thesis model, a second choice, saw all of them: its manifest says so).
        GENERATOR: [(SOURCE_DATASETS[src], path, ident)
                    for src, path, ident in training_items(celeba="train")],
        MORPHABLE: [(d, Path(str(p)), None)
                    for d, p in training_images(**morphable_parameters())],
        CALIBRATION: [("genki4k", it.path, None) for it in genki("train")],
    }


def write_shipped_manifests(progress: Progress | None = None) -> dict[str, Path]:
    """(Re)write the shipped models' manifests; each file is hashed once."""
    from studio.core.assets import sha256_of

    hashes: dict[Path, str] = {}

    def digest(path: Path) -> str:
        if path not in hashes:
            hashes[path] = sha256_of(path)
        return hashes[path]

    written = {}
    selections = shipped_selections()
    weights = shipped_weights()
    for model, files in selections.items():
        entries = [ManifestEntry(digest(path), dataset, ident)
                   for dataset, path, ident in track(files, progress, f"hashing ({model})")]
        where = manifest_path(weights[model])
        TrainingManifest(model, entries).save(where)
        written[model] = where
    shipped_manifests.cache_clear()
    return written
