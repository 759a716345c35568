"""`studio evaluate`: naive baselines, the observation pipeline and its cache, the report."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.core.analysis.images import load_image
from studio.core.analysis.landmarks import largest_face
from studio.core.evaluation.methods import families, methods_for
from studio.core.evaluation.observations import ObservationCache
from studio.core.evaluation.report import render_markdown, slug, write_report
from studio.core.evaluation.sources import discover
from studio.core.evaluation.study import evaluate
from studio.core.evaluation.summary import summarise_run
from studio.core.surrogates import baselines

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def people(celeba_people) -> Path:
    """Six celeba-id people with two photos each, one sub-folder per person."""
    return celeba_people(6)


@pytest.fixture(scope="module")
def run(engine, people, tmp_path_factory):
    cache = ObservationCache(tmp_path_factory.mktemp("cache") / "obs.sqlite")
    dataset = discover(people)
    result = evaluate([dataset], methods_for(families()), engine, workers=2, cache=cache)
    return result, cache, dataset


def test_naive_methods_change_the_face_and_nothing_else(utk_face, analyzer):
    face = largest_face(analyzer.analyze(utk_face).faces)
    region = baselines.face_region(utk_face.shape, face.landmarks) > 0
    assert 0.2 < region.mean() < 0.9
    for out in (baselines.blur(utk_face, face.landmarks, 0.12),
                baselines.pixelate(utk_face, face.landmarks, 8),
                baselines.black_mask(utk_face, face.landmarks, "face")):
        assert out.shape == utk_face.shape and out.dtype == np.uint8
        assert np.array_equal(out[~region], utk_face[~region])  # the rest of the photo stays
        assert np.abs(out[region].astype(int) - utk_face[region]).mean() > 5
    masked = baselines.black_mask(utk_face, face.landmarks, "face")
    assert masked[region].max() == 0
    light, strong = (baselines.blur(utk_face, face.landmarks, s) for s in (0.05, 0.12))
    detail = [np.abs(np.diff(x[region].astype(float), axis=0)).mean() for x in
              (utk_face, light, strong)]
    assert detail[0] > detail[1] > detail[2]  # stronger blur, less detail
    bar = baselines.black_mask(utk_face, face.landmarks, "eyes")
    eyes = face.landmarks[[33, 263], :2].astype(int)
    assert all(bar[y, x].max() == 0 for x, y in eyes)
    assert bar.mean() > masked.mean()  # a bar hides less than the whole face
    with pytest.raises(ValueError):
        baselines.black_mask(utk_face, face.landmarks, "nose")


def test_discover_reads_the_data_sets_and_folders(people):
    from studio.core.datasets import data_root

    g = discover(data_root() / "genki4k")
    assert g.kind == "genki4k-test" and len(g.sources) == 1200
    assert set(g.sources[0].truth) == {"smile", "yaw", "pitch", "roll"}
    c = discover(data_root() / "celeba-id", limit=100)
    assert c.identities_known and 90 <= len(c.sources) <= 100
    ids = [s.identity for s in c.sources]
    full = discover(data_root() / "celeba-id")
    per_person = {i: sum(s.identity == i for s in full.sources) for i in set(ids)}
    assert all(ids.count(i) == n for i, n in per_person.items())  # people are kept whole
    u = discover(data_root() / "utkface", limit=20)
    assert u.kind == "utkface-holdout" and {"male"} == set(u.sources[0].truth)
    p = discover(people)
    assert p.identities_known and len({s.identity for s in p.sources}) == 6
    assert len(p.sources) == 12


def test_evaluation_measures_every_method_on_real_faces(run):
    result, _cache, dataset = run
    assert result.computed == len(dataset.sources) and not result.problems
    methods = {m.method for m in result.measurements}
    assert methods == {"original", "gan", "3d", "context", "context-strict", "context-blur",
                       "blur-light", "blur-strong", "pixelate-light", "pixelate-strong",
                       "mask-eyes", "mask-face"}
    by = {(m.source, m.method): m for m in result.measurements}
    for (_source, method), m in by.items():
        if method == "original":
            assert m.output is m.original and m.original.found
        if method.startswith(("blur", "pixelate", "mask")):
            # aligned outputs are always described, at the original's landmarks
            assert m.output.descriptor is not None
    results = {r.method: r for r in summarise_run(result)}
    assert results["original"].smile_agreement == 1.0
    assert results["original"].median_distance == 0.0
    assert results["original"].attack1.rates[1] == 1.0
    assert results["mask-face"].detection <= 0.2
    assert results["gan"].detection >= 0.8
    assert results["gan"].deidentified >= 0.8 and results["3d"].deidentified >= 0.8
    # the in-context faces are read back and redrawn until a different person keeps the smile
    assert results["context"].deidentified >= 0.8 and results["context"].smile_agreement >= 0.8
    assert results["blur-light"].median_distance < results["gan"].median_distance


def test_a_rerun_comes_from_the_cache(run):
    result, cache, dataset = run
    def no_models():
        pytest.fail("a run with every face cached loaded the models")

    seen = []
    again = evaluate([dataset], methods_for(families()), no_models, workers=1, cache=cache,
                     progress=lambda *call: seen.append(call))
    assert again.computed == 0
    n = len(dataset.sources)
    assert seen == [(i, n, "faces") for i in range(1, n + 1)]
    first = {(m.source, m.method): m.output for m in result.measurements}
    for m in again.measurements:
        before = first[(m.source, m.method)]
        assert before.found == m.output.found
        assert np.allclose(before.descriptor, m.output.descriptor, atol=1e-6)
        assert np.isclose(before.joy, m.output.joy) or not before.found


def test_a_stopped_run_computes_nothing_more(people, tmp_path):
    cache = ObservationCache(tmp_path / "obs.sqlite")
    dataset = discover(people)
    seen = []
    run = evaluate([dataset], methods_for(families()), lambda: None, workers=1, cache=cache,
                   progress=lambda *call: seen.append(call), stop=lambda: True)
    assert run.computed == 0 and not run.measurements and not run.problems
    assert seen[-1] == (len(dataset.sources), len(dataset.sources), "faces")


def test_report_files(run, tmp_path):
    result, _cache, dataset = run
    results = summarise_run(result)
    index = write_report(result, results, tmp_path / "report", "studio evaluate …")
    page = index.read_text(encoding="utf-8")
    for text in ("Privacy", "GAN surrogate", "attack I rank-1", "TAR @ FAR 1e-3",
                 "black mask over the face"):
        assert text in page
    for key in ("tradeoff", "distances", "roc"):
        png = tmp_path / "report" / f"{key}-{slug(dataset.name)}.png"
        assert png.is_file() and Image.open(png).size[0] > 300
    with (tmp_path / "report" / "per_face.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(dataset.sources) * 12
    assert {r["method"] for r in rows} >= {"gan", "mask-face"}
    assert all(float(r["distance"]) == 0 for r in rows if r["method"] == "original")
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    gan = next(r for r in summary["results"] if r["method"] == "gan")
    assert gan["attack1"]["gallery"] == 6 and gan["attack1"]["chance_rank1"] == pytest.approx(1 / 6)
    md = render_markdown(result, results, "report")
    assert f"![tradeoff](report/tradeoff-{slug(dataset.name)}.png)" in md
    assert "| GAN surrogate |" in md


def test_cli_reports_bad_files_and_keeps_going(tmp_path, genki_test):
    folder = tmp_path / "photos ü"
    folder.mkdir()
    for item in genki_test[:3]:
        shutil.copy(item.path, folder / item.path.name)
    (folder / "broken.jpg").write_bytes(b"not an image at all")
    Image.fromarray(np.full((80, 80, 3), 128, np.uint8)).save(folder / "wall.png")
    before = {p: p.read_bytes() for p in folder.iterdir()}
    out = tmp_path / "report"
    proc = subprocess.run(
        [sys.executable, "-m", "studio", "evaluate", "--data", str(folder), "--methods",
         "gan,blur", "--out", str(out), "--markdown", str(tmp_path / "evaluation.md"),
         "--quiet"], capture_output=True, text=True, timeout=600,
        env={**__import__("os").environ, "STUDIO_CACHE": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "broken.jpg" in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["datasets"][0]["no_face"] == 1 and summary["datasets"][0]["sources"] == 5
    assert {r["method"] for r in summary["results"]} == {"original", "gan", "blur-light",
                                                          "blur-strong"}
    assert "(report/tradeoff-photos.png)" in (tmp_path / "evaluation.md").read_text()
    assert {p: p.read_bytes() for p in folder.iterdir()} == before  # originals untouched
    assert "GAN surrogate, photos ü: de-identified share" in proc.stdout


def test_unknown_method_is_a_clear_error():
    from studio.core.errors import StudioError

    with pytest.raises(StudioError, match="unknown method warp"):
        methods_for(["gan", "warp"])


def test_load_image_of_a_source(people):
    # every photo of the folder loads as the pipeline reads it
    for s in discover(people).sources:
        assert load_image(s.path).rgb.ndim == 3


def test_attacks_need_enough_people(run):
    from studio.core.evaluation.summary import summarise

    result, _cache, _dataset = run
    rows = [m for m in result.measurements if m.method == "blur-light"]
    one_person = [m for m in rows if m.identity == rows[0].identity]
    r = summarise(one_person, identities_known=True)
    assert r.attack2 is None  # nobody else to tell this person from
    assert r.attack1.gallery_size == 1 and r.attack1.rates[1] == 1.0
    assert summarise(rows, identities_known=False).attack1 is None


def test_the_independent_judge_sees_every_output(run):
    result, _cache, _dataset = run
    for m in result.measurements:
        for obs in (m.original, m.output):
            assert obs.expression7 is not None and len(obs.expression7) == 7
            assert abs(sum(obs.expression7) - 1) < 1e-4
    by_method = {r.method: r for r in summarise_run(result)}
    assert by_method["original"].expression7_agreement == 1.0
    assert by_method["original"].happy_agreement == 1.0
    # Strong blur and a black face mask leave the judge little of the expression.
    masked = by_method["mask-face"].expression7_agreement
    assert masked < by_method["original"].expression7_agreement
    for bin_ in by_method["gan"].joy_bins:
        assert bin_.n == 0 or 0 <= bin_.expression7_agreement <= 1


def test_originals_and_surrogates_carry_realism_features(run):
    result, _cache, _dataset = run
    for m in result.measurements:
        assert m.original.realism is not None
        assert len(m.original.realism["descriptor"]) == len(m.original.realism["pooled"]) == 128
        has = m.output.realism is not None
        assert has == (m.method in ("original", "gan", "3d")), m.method


def test_the_parrot_gallery_is_made_once_and_attacks_every_method(run, engine):
    from studio.core.evaluation.parrot import SEED_INDEX, parrot_gallery

    result, cache, dataset = run
    gallery = parrot_gallery(result, engine, cache=cache, workers=1)
    people = {s.identity for s in dataset.sources}
    assert {k[2] for k in gallery} == {"gan", "3d", "context", "context-strict",
                                       "context-blur"}  # the seeded
    assert len({k[1] for k in gallery}) == len(people)  # one gallery photo per person
    own = {(m.source, m.method): m.output for m in result.measurements}
    for (_, source, method), obs in gallery.items():  # a fresh seed: another surrogate
        if obs.found and own[(source, method)].found:
            assert not np.allclose(obs.descriptor, own[(source, method)].descriptor)
    assert SEED_INDEX != 0

    def no_models():
        pytest.fail("a cached parrot gallery loaded the models")

    assert parrot_gallery(result, no_models, cache=cache, workers=1).keys() == gallery.keys()
    by_method = {r.method: r for r in summarise_run(result, gallery)}
    assert by_method["original"].parrot is None
    for key in ("gan", "3d", "context", "blur-light", "mask-face"):
        p = by_method[key].parrot
        assert p is not None and p.gallery_size == len(people)
        assert p.chance[1] == pytest.approx(1 / len(people))
    # The light blur keeps the person: its own outputs as a gallery give it away.
    assert by_method["blur-light"].parrot.rates[1] > 3 * by_method["blur-light"].parrot.chance[1]


def test_a_new_generator_re_measures_the_gan_rows_only():
    """Each family's cache key holds the fingerprint of the models it uses: a new default
    generator changes the GAN's keys and nothing else's."""
    from studio.core.evaluation.observations import Fingerprints, cache_key, models_fingerprint
    from studio.core.evaluation.parrot import SUFFIX
    from studio.core.surrogates.registry import NEEDS_GENERATOR

    old = Fingerprints({"analysis": "a1", NEEDS_GENERATOR: "g1", "rendered": "r1"})
    new = Fingerprints({"analysis": "a1", NEEDS_GENERATOR: "g2", "rendered": "r1"})
    for method in ("original", "gan", "3d", "context", "context-blur", "blur-light",
                   "pixelate-strong", "mask-face", "gan" + SUFFIX, "3d" + SUFFIX):
        changed = cache_key(old, "sha", method) != cache_key(new, "sha", method)
        assert changed == method.startswith("gan"), method
    assert cache_key(old, "sha", "context").startswith("r1:sha:context#r")
    now = models_fingerprint()
    assert len({now.of("gan"), now.of("3d"), now.of("blur-strong")}) == 3


def test_tradeoff_labels_never_overlap_in_a_crowded_corner():
    """The shipped report's points (docs/evaluation/summary.json, measured on the held-out
    sets): GAN, in-context and 3D surrogates all sit in the top right, and their labels
    must still stand apart, each no higher than just above its own point."""
    from studio.core.evaluation.figures import LABEL_LINE, label_places

    summary = json.loads((Path(__file__).parents[2] / "docs" / "evaluation"
                          / "summary.json").read_text(encoding="utf-8"))
    groups: dict[str, list[tuple[float, float]]] = {}
    for r in summary["results"]:
        groups.setdefault(r["dataset"], []).append((r["deidentified"], r["smile_agreement"]))
    crowded = 0
    for points in groups.values():
        places = label_places(points)
        for i, ((x, y), (lx, ly)) in enumerate(zip(points, places, strict=True)):
            assert lx == x and ly <= y + 0.01 + 1e-9
            for (x2, _), (lx2, ly2) in zip(points[i + 1:], places[i + 1:], strict=True):
                if (x > 0.6) == (x2 > 0.6) and abs(lx - lx2) < 0.35:
                    assert abs(ly - ly2) >= LABEL_LINE - 1e-9, (x, y, x2)
        top_right = [p for p in points if p[0] > 0.9 and p[1] > 0.85]
        crowded += len(top_right) >= 3
    assert crowded, "the report no longer has a crowded corner to test against"


def test_new_refiner_weights_re_measure_the_rendered_rows_only(tmp_path, monkeypatch):
    """The refiner is part of the rendered methods' fingerprint: retrained weights
    re-measure the in-context rows without a drawing revision, and nothing else."""
    import shutil

    from studio.core.assets import MODELS_DIR
    from studio.core.evaluation import observations

    models = tmp_path / "models"
    for folder in ("morphable", "refiner"):
        (models / folder).mkdir(parents=True)
    shutil.copy(MODELS_DIR / "analysis_calibration.json", models)
    (models / "morphable" / "model.safetensors").write_bytes(b"morphable")
    weights = models / "refiner" / "refiner_128.safetensors"
    weights.write_bytes(b"step 3131")
    monkeypatch.setattr(observations, "MODELS_DIR", models)
    before = observations.models_fingerprint()
    weights.write_bytes(b"step 4527")
    after = observations.models_fingerprint()
    assert after.of("context") != before.of("context")
    assert after.of("3d") != before.of("3d")  # rendered too: one fingerprint for both
    assert after.of("gan") == before.of("gan") and after.of("blur-light") == before.of(
        "blur-light")
