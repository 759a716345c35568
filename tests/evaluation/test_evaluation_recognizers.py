"""`studio evaluate` measures with both recognizers (issue 28): every observation carries
the second recognizer's descriptor, each privacy figure is given by dlib and by the second
side by side, and the report says that the studio steers on both. Real held-out faces:
celeba-id's test identities, two photos each."""

from __future__ import annotations

import csv
import html
import json
from pathlib import Path

import numpy as np
import pytest

from studio.core.analysis.recognizer import MODEL_FILE
from studio.core.errors import ModelFileError
from studio.core.evaluation.methods import methods_for
from studio.core.evaluation.observations import Observation, ObservationCache
from studio.core.evaluation.privacy import ARCFACE, DLIB, read_back, steering
from studio.core.evaluation.report import write_report
from studio.core.evaluation.sources import discover
from studio.core.evaluation.study import evaluate
from studio.core.evaluation.summary import summarise_run

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def held_out_people(celeba_people) -> Path:
    """Eight people of celeba-id's test identities (never trained on), two photos each."""
    return celeba_people(8, held_out=True)


@pytest.fixture(scope="module")
def measured(engine, held_out_people, tmp_path_factory):
    cache = ObservationCache(tmp_path_factory.mktemp("cache") / "obs.sqlite")
    dataset = discover(held_out_people)
    run = evaluate([dataset], methods_for(["blur", "pixelate"]), engine, workers=1,
                   cache=cache)
    return run, cache, dataset, {r.method: r for r in summarise_run(run)}


def test_every_face_is_described_by_both_recognizers(measured):
    run, _cache, dataset, _ = measured
    assert run.computed == len(dataset.sources) and not run.problems
    for m in run.measurements:
        for obs in (m.original, m.output):
            assert obs.descriptor is not None and obs.descriptor.shape == (128,)
            # the aligned outputs too, at the original's landmarks
            assert obs.descriptor2 is not None and obs.descriptor2.shape == (192,)
            assert np.linalg.norm(obs.descriptor2) == pytest.approx(1.0, abs=1e-4)
    first = run.measurements[0].original
    again = Observation.from_json(first.to_json())
    assert np.array_equal(again.descriptor2, first.descriptor2)


def test_the_original_is_the_same_person_to_both(measured):
    *_, results = measured
    original = results["original"]
    for rec in (DLIB, ARCFACE):
        p = original.privacy[rec.key]
        assert p.recognizer is rec and p.deidentified == 0.0
        assert p.attack1 is not None and p.attack1.rates[1] >= 0.75  # the other photo too
        assert p.attack1.chance[1] == pytest.approx(1 / 8)
    assert original.median_distance == 0.0
    assert original.second.median == pytest.approx(1.0, abs=1e-5)
    assert original.deidentified_both == 0.0


def test_blur_behaves_for_the_second_recognizer_roughly_as_for_dlib(measured):
    *_, results = measured
    light, strong = results["blur-light"], results["blur-strong"]
    for rec in (DLIB, ARCFACE):
        a, b = light.privacy[rec.key], strong.privacy[rec.key]
        assert b.deidentified >= 0.75 and a.deidentified < b.deidentified, rec.key
        assert a.attack1.rates[1] > b.attack1.rates[1], rec.key
        # the light blur keeps the person: its own outputs as the parrot's gallery find them
        assert a.parrot is not None and a.parrot.rates[1] > 3 * a.parrot.chance[1], rec.key
        assert a.attack2 is not None and a.attack2.accuracy > a.attack2.chance, rec.key
    # the second's figure is a similarity: the light blur keeps more of the face
    assert light.second.median > strong.second.median
    assert abs(light.deidentified - light.second.deidentified) <= 0.5
    # both at once can only be stricter than either alone
    for r in results.values():
        assert r.deidentified_both <= min(r.deidentified, r.second.deidentified) + 1e-9


def test_the_report_gives_both_and_says_the_studio_steers_on_both(measured, tmp_path):
    run, _cache, _dataset, results = measured
    index = write_report(run, list(results.values()), tmp_path / "report", "studio evaluate …")
    page = index.read_text(encoding="utf-8")
    statement = steering()
    assert "dlib" in statement and "MobileFaceNet ArcFace" in statement
    assert "independent" in statement and statement in html.unescape(page)
    assert page.count("MobileFaceNet ArcFace") >= len(results)  # a row per method
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["steering"] == statement
    assert [r["key"] for r in summary["recognizers"]] == ["dlib", "arcface"]
    assert all(r["steered_on"] for r in summary["recognizers"])
    blur = next(r for r in summary["results"] if r["method"] == "blur-light")
    second = blur["recognizers"]["arcface"]
    assert second["deidentified"] == pytest.approx(results["blur-light"].second.deidentified)
    assert second["attack1"]["chance_rank1"] == pytest.approx(1 / 8)
    assert {"attack_parrot", "attack2", "median_similarity"} <= set(second)
    original = next(r for r in summary["results"] if r["method"] == "original")
    assert original["attack_parrot_labels"]["chance_rank1"] == pytest.approx(1 / 8)
    assert "the labels alone" in html.unescape(page)
    assert blur["deidentified"] == blur["recognizers"]["dlib"]["deidentified"]
    with (tmp_path / "report" / "per_face.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    originals = [r for r in rows if r["method"] == "original"]
    assert all(float(r["arcface_similarity"]) == pytest.approx(1.0, abs=1e-3)
               and r["another_person_both"] == "False" for r in originals)
    assert {r["read_back_by"] for r in rows} == {""}  # no method here is read back
    assert read_back("context") and read_back("gan")
    assert not read_back("blur-light") and not read_back("3d") and not read_back("original")


def test_the_labels_alone_set_the_parrots_floor(measured):
    """The parrot attack by the five kept labels alone (evaluation.label_parrot): on the
    originals, each gallery photo finds itself; a person's other photo is found exactly
    when it carries that person's labels, and not when it carries someone else's."""
    from dataclasses import replace

    from studio.core.evaluation.label_parrot import label_parrot

    run, *_, results = measured
    floor = results["original"].label_parrot
    assert floor is not None and floor.chance[1] == pytest.approx(1 / 8)
    assert floor.rates[1] >= 0.5  # the eight gallery photos match their own labels
    originals = [m for m in run.measurements if m.method == "original"]
    first: dict[str, Observation] = {}
    for m in originals:
        first.setdefault(m.identity, m.output)
    people = list(first)
    kept = [m if m.output is first[m.identity] else replace(m, output=first[m.identity])
            for m in originals]
    moved = [m if m.output is first[m.identity] else
             replace(m, output=first[people[(people.index(m.identity) + 1) % len(people)]])
             for m in originals]
    assert label_parrot(kept, {})[1] == 1.0
    assert label_parrot(moved, {})[1] == 0.0
    # the labels of outputs without a face are no evidence: a method that loses every
    # face is found by chance alone, never by its missing labels
    lost = [m if m.output is first[m.identity] else replace(m, output=Observation(False))
            for m in originals]
    attack, other = label_parrot(lost, {})
    assert other == 0.0 and attack.n_no_face == len(lost) - len(people)


def test_a_cached_rerun_keeps_both_descriptors(measured):
    run, cache, dataset, _ = measured

    def no_models():
        pytest.fail("a run with every face cached loaded the models")

    again = evaluate([dataset], methods_for(["blur", "pixelate"]), no_models, workers=1,
                     cache=cache)
    assert again.computed == 0
    first = {(m.source, m.method): m.output for m in run.measurements}
    for m in again.measurements:
        assert np.allclose(first[(m.source, m.method)].descriptor2, m.output.descriptor2,
                           atol=1e-6)


def test_the_recognizer_file_is_part_of_every_cache_key(tmp_path, monkeypatch):
    """Observations made before the second recognizer (or with another file) are not read
    back as if they held its descriptor; a missing file stops the run, naming it."""
    from studio.core.evaluation import observations

    now = observations.models_fingerprint()
    monkeypatch.setattr(observations, "CACHE_VERSION", observations.CACHE_VERSION - 1)
    assert observations.models_fingerprint().digests != now.digests
    monkeypatch.undo()
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    with pytest.raises(ModelFileError, match="make models") as err:
        observations.models_fingerprint()
    assert MODEL_FILE in str(err.value)


def test_evaluate_without_the_recognizer_file_stops_with_one_message(
        held_out_people, tmp_path, monkeypatch, capsys):
    from studio.cli import main
    from studio.core.evaluation import job

    def no_models(*args, **kwargs):
        raise AssertionError("the models were loaded before the recognizer file was checked")

    monkeypatch.setattr(job, "batch_engine", no_models)
    monkeypatch.setenv("STUDIO_THIRD_PARTY_DIR", str(tmp_path))
    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    (tmp_path / MODEL_FILE).write_bytes(b"not the model")
    out = tmp_path / "report"
    code = main(["evaluate", "--data", str(held_out_people), "--methods", "blur",
                 "--out", str(out), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert MODEL_FILE in err[0] and "make models" in err[0]
    assert not out.exists()  # no report measured with dlib alone
