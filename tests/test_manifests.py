"""Training and evaluation never share an identity: the shipped models' training manifests,
the identity-disjoint celeba-id split, and the evaluation's marks of what a model saw."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys

import numpy as np
import pytest

from studio.core.assets import PROJECT_ROOT, sha256_of
from studio.core.datasets import (
    CELEBA_TRAIN_SHARE,
    ManifestEntry,
    TrainingManifest,
    celeba_id,
    celeba_split,
    data_root,
    genki,
    manifest_path,
    utk_split,
    utkface,
)
from studio.core.errors import StudioError
from studio.core.evaluation.provenance import shipped_manifests, shipped_selections
from studio.core.evaluation.sources import discover, mark_seen
from studio.core.generator.choices import BY_KEY
from studio.core.generator.training_data import TrainingSet, training_items

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def manifests() -> dict[str, TrainingManifest]:
    found = shipped_manifests()
    assert all(m is not None for m in found.values()), f"missing manifests: {found.keys()}"
    return found  # type: ignore[return-value]


@pytest.fixture(scope="module")
def selections():
    return shipped_selections()


def test_shipped_manifests_match_the_selections_they_were_built_with(manifests, selections):
    assert set(manifests) == {"generator", "morphable", "calibration"} == set(selections)
    for model, files in selections.items():
        manifest = manifests[model]
        assert manifest.model == model and len(manifest.entries) == len(files)
        assert [(e.dataset, e.identity) for e in manifest.entries] == [
            (d, i) for d, _, i in files]
        for k in np.linspace(0, len(files) - 1, 40).astype(int):  # a spread sample of hashes
            assert manifest.entries[k].sha256 == sha256_of(files[k][1]), (model, files[k][1])
    # The default generator saw the celeba-id "train" people only; the thesis model, a
    # second choice, saw every one (it predates the split), and its manifest says so.
    assert manifests["generator"].identities("celeba-id") == {
        it.identity for it in celeba_split(celeba_id(), "train")}
    thesis = TrainingManifest.load(manifest_path(BY_KEY["thesis"].path))
    assert thesis.identities("celeba-id") == {it.identity for it in celeba_id()}
    assert len(manifests["morphable"].entries) == 3500  # the model card's 2,000 + 1,500
    assert len(manifests["calibration"].entries) == len(genki("train"))


def test_held_out_sets_share_no_file_or_person_with_any_manifest(manifests):
    train_paths = {p for files in shipped_selections().values() for _, p, _ in files}
    genki_train = {sha256_of(it.path) for it in genki("train")}
    held_out = [it.path for it in genki("test")] + [
        it.path for it in utk_split(utkface(), "test")]
    assert not train_paths & set(held_out)
    for model, manifest in manifests.items():
        assert not manifest.identities("genki4k") and not manifest.identities("utkface")
        for path in held_out:
            if manifest.contains_image(sha256_of(path)):
                # Only GENKI-4K's own byte-identical copies across its split get through.
                assert path.parent.parent.name == "genki4k", (model, path)
                assert sha256_of(path) in genki_train, (model, path)


def test_celeba_test_identities_are_disjoint_from_training(manifests):
    people = celeba_id()
    test_ids = {it.identity for it in celeba_split(people, "test")}
    assert test_ids and len(test_ids) < len({it.identity for it in people})
    for model in ("generator", "morphable", "calibration"):
        assert not manifests[model].identities("celeba-id") & test_ids
        assert not any(manifests[model].contains_image(sha256_of(it.path))
                       for it in celeba_split(people, "test")[::10])
    now = [i for src, _, i in training_items() if src == 2]
    assert now and not set(now) & test_ids
    train_hashes = {sha256_of(p) for src, p, _ in training_items() if src == 2}
    assert not train_hashes & {sha256_of(it.path) for it in celeba_split(people, "test")}
    # The thesis model's manifest is the truth about its weights: it saw them all.
    thesis = TrainingManifest.load(manifest_path(BY_KEY["thesis"].path))
    assert test_ids <= thesis.identities("celeba-id")


def test_celeba_split_is_stable_and_identity_disjoint():
    people = celeba_id()
    train, test = celeba_split(people, "train"), celeba_split(people, "test")
    assert len(train) + len(test) == len(people) == len(celeba_split(people, "all"))
    train_ids, test_ids = {it.identity for it in train}, {it.identity for it in test}
    assert not train_ids & test_ids
    share = len(train_ids) / (len(train_ids) + len(test_ids))
    assert abs(share - CELEBA_TRAIN_SHARE) < 0.05
    # Stable across processes (Python's own hash would change with PYTHONHASHSEED).
    code = ("from studio.core.datasets import celeba_id, celeba_split; "
            "print(sorted({it.identity for it in celeba_split(celeba_id(), 'test')}))")
    for seed in ("1", "2"):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, env={"PYTHONHASHSEED": seed, "PATH": ""},
                             cwd=PROJECT_ROOT).stdout
        assert out.strip() == str(sorted(test_ids))
    with pytest.raises(ValueError, match="unknown celeba-id split"):
        celeba_split(people, "validation")


def test_evaluation_marks_a_photo_seen_exactly_when_a_manifest_holds_it(manifests, tmp_path):
    celeba = discover(data_root() / "celeba-id")
    test_ids = {str(it.identity) for it in celeba_split(celeba_id(), "test")}
    assert {s.identity for s in celeba.sources} == test_ids
    assert not any(s.seen_by for s in celeba.sources)  # no shipped default model saw them
    assert celeba.seen()["generator"] == celeba.seen()["morphable"] == (0, 0)
    assert "seen in training by none of the models" in celeba.provenance()
    thesis = {"generator": TrainingManifest.load(manifest_path(BY_KEY["thesis"].path))}
    by_thesis = mark_seen(discover(data_root() / "celeba-id", limit=300), thesis)
    assert all(s.seen_by == ("generator",) for s in by_thesis.sources)
    assert "by the generator (all of the people" in by_thesis.provenance()

    for folder in ("genki4k", "utkface"):
        dataset = discover(data_root() / folder)
        for s in dataset.sources:
            digest = sha256_of(s.path)
            assert s.seen_by == tuple(m for m, t in manifests.items()
                                      if t.contains_image(digest))
    utk = discover(data_root() / "utkface")
    assert not any(s.seen_by for s in utk.sources)
    assert "seen in training by none of the models" in utk.provenance()

    # A folder of someone's photos: a copied training image is recognised by its bytes.
    seen_img = genki("train")[0].path
    unseen_img = utk_split(utkface(), "test")[0].path
    shutil.copy(seen_img, tmp_path / "a.jpg")
    shutil.copy(unseen_img, tmp_path / "b.jpg")
    folder = discover(tmp_path)
    marks = {s.name: s.seen_by for s in folder.sources}
    assert set(marks["a.jpg"]) >= {"generator", "calibration"} and marks["b.jpg"] == ()

    # Any manifest works: one that holds a single celeba-id person marks that person only.
    person = celeba.sources[0].identity
    one = TrainingManifest("probe", [ManifestEntry("0" * 64, "celeba-id", int(person))])
    marked = mark_seen(discover(data_root() / "celeba-id", limit=200), {"probe": one,
                                                                         "absent": None})
    assert {s.identity for s in marked.sources if s.seen_by} == {person}
    assert marked.unchecked == ("absent",) and "no manifest for absent" in marked.provenance()


def test_manifest_files_round_trip_and_refuse_what_is_not_one(tmp_path):
    files = [("genki4k", it.path, None) for it in genki("train")[:5]]
    files += [("celeba-id", it.path, it.identity) for it in celeba_id()[:5]]
    manifest = TrainingManifest.of_files("probe", files)
    where = manifest_path(tmp_path / "weights.safetensors")
    assert where.name == "training_manifest_weights.csv.gz"
    manifest.save(where)
    first = where.read_bytes()
    back = TrainingManifest.load(where)
    assert back.model == "probe" and back.entries == manifest.entries
    back.save(where)
    assert where.read_bytes() == first  # the committed files only change with their entries
    assert back.contains_identity("celeba-id", str(files[-1][2]))
    assert not back.contains_identity("celeba-id", "not-a-number")
    more = TrainingManifest.of_files("probe", [("utkface", utkface()[0].path, None)])
    assert len(back.merged(more).entries) == 11 and len(back.merged(back).entries) == 10

    bad = tmp_path / "bad.csv.gz"
    bad.write_bytes(b"not gzip")
    with pytest.raises(StudioError, match="not a training manifest"):
        TrainingManifest.load(bad)
    assert bad.read_bytes() == b"not gzip"
    bad.write_bytes(gzip.compress(b"sha256,dataset,identity\n"))
    with pytest.raises(StudioError, match="no model line"):
        TrainingManifest.load(bad)


def test_training_set_file_keeps_its_manifest(tmp_path):
    manifest = TrainingManifest.of_files(
        "generator", [("celeba-id", it.path, it.identity) for it in celeba_id()[:3]])
    data = TrainingSet(np.zeros((3, 64, 64, 3), np.uint8), np.zeros((3, 5), np.float32),
                       np.full(3, 2, np.int8), {"crops": 3}, manifest)
    data.save(tmp_path / "train.npz")
    back = TrainingSet.load(tmp_path / "train.npz")
    assert back.manifest is not None and back.manifest.entries == manifest.entries
    np.savez(tmp_path / "old.npz", images=data.images, labels=data.labels,
             source=data.source, counts="{}")
    assert TrainingSet.load(tmp_path / "old.npz").manifest is None
