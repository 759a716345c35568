"""Crowd results: parsers on realistic and broken files, the thesis's analysis, the report CLI."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
import warnings

import numpy as np
import pytest
from matplotlib.figure import Figure
from scipy import stats

from studio.core.crowd.formats import (
    MAPPING_COLUMNS,
    Answer,
    MappingRow,
    ParsedResults,
    read_mapping,
    read_results,
    read_truth,
)
from studio.core.crowd.power import simulate_differences, t_test_zero
from studio.core.crowd.report import make_figures, render_html
from studio.core.crowd.statistics import analyze, paired_test


def mapping_of(*rows: tuple) -> dict[str, MappingRow]:
    return {r[0]: MappingRow(*r) for r in rows}


# --- significance -----------------------------------------------------------------------------


def test_known_effect_is_significant_with_the_right_sign(crowd_study):
    study = crowd_study(60, 40, {"original": 0.85, "gan": 0.70}, seed=1)
    a = analyze(study.parsed(), study.mapping, study.truth)
    (test,) = a.tests
    assert (test.a, test.b, test.n) == ("original", "gan", 60)
    assert test.t > 0 and test.p < 0.001
    assert test.mean_difference == pytest.approx(40 * 0.15, abs=1.5)
    # The same numbers as an independent paired test on the simulated correct counts.
    per_image = {(i.original_key, i.version): i.n_correct for i in a.images}
    d = [per_image[(k, "original")] - per_image[(k, "gan")] for k in study.truth]
    ref = stats.ttest_1samp(d, 0)
    assert test.t == pytest.approx(ref.statistic) and test.p == pytest.approx(ref.pvalue)
    reversed_ = analyze(study.parsed(), {k: MappingRow(r.item_id, r.original_key,
                        {"original": "3d", "gan": "original"}[r.version], r.seed, r.kind, None,
                        r.joy) for k, r in study.mapping.items()}, study.truth)
    assert reversed_.tests[0].t == pytest.approx(-test.t)  # original - 3d: now the worse one


def test_no_effect_is_significant_about_five_percent_of_the_time():
    rng = np.random.default_rng(7)
    d = simulate_differences(rng, 0.75, 0.75, np.array([40]), images=60, reps=1000)[0]
    t, p = t_test_zero(d.sum(axis=1), (d * d).sum(axis=1), 60)
    rate = float((p < 0.05).mean())
    assert 0.03 <= rate <= 0.075  # binomial(1000, 0.05): 3.6 SE either side
    # The vectorised test is the crowd analysis's test.
    for row, t_row, p_row in zip(d[:25], t[:25], p[:25], strict=True):
        ref = paired_test("a", "b", row.astype(float))
        assert (ref.t, ref.p) == (pytest.approx(t_row), pytest.approx(p_row))


def test_zero_variance_differences_are_decided_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = paired_test("a", "b", np.zeros(12))
        up = paired_test("a", "b", np.full(12, 2.0))
        down = paired_test("a", "b", np.full(12, -1.0))
        t, p = t_test_zero(np.array([0, 24, -12]), np.array([0, 48, 12]), 12)
    assert (same.t, same.p) == (0.0, 1.0)
    assert (up.t, up.p) == (math.inf, 0.0) and (down.t, down.p) == (-math.inf, 0.0)
    assert list(t) == [0.0, math.inf, -math.inf] and list(p) == [1.0, 0.0, 0.0]
    assert math.isnan(paired_test("a", "b", np.array([3.0])).p)  # one image: no test


# --- parsers ----------------------------------------------------------------------------------


def test_mturk_batch_with_rejections_garbage_and_unknown_items(tmp_path, crowd_study):
    mturk_row = crowd_study.mturk_row
    known = {"a3f9c2e1b0d4", "b1b2b3b4b5b6", "c0ffee000001", "d00d00d00d00", "e1e1e1e1e1e1"}
    good = [mturk_row("A1X", "a3f9c2e1b0d4", "smile", n=1),
            mturk_row("A2Y", "a3f9c2e1b0d4", "No smile", n=2),
            mturk_row("A1X", "b1b2b3b4b5b6", "yes", n=3),
            mturk_row("A2Y", "b1b2b3b4b5b6", "0", n=4),
            mturk_row("A3Z", "c0ffee000001", "False",
                      url="https://cdn.example.org/b/c0ffee000001.png?X-Amz-Signature=ab%2Fcd&e=1",
                      n=5),
            mturk_row("A3Z", "d00d00d00d00",
                      task_answers='[{"smile":{"smile":true,"no_smile":false}}]', n=6),
            mturk_row("A3Z", "e1e1e1e1e1e1", task_answers='[{"smile": {"label": "No smile"}}]',
                      n=7)]
    bad = [mturk_row("A4W", "a3f9c2e1b0d4", "", n=8),  # empty answer
           mturk_row("A4W", "ffffffffffff", "smile", n=9),  # not in the mapping
           mturk_row("A4W", "b1b2b3b4b5b6", "maybe", n=10),  # unknown label
           mturk_row("A4W", "c0ffee000001", task_answers="[{smile: true", n=11),  # bad JSON
           mturk_row("A4W", "d00d00d00d00", "smile", url="https://x.org/photo.jpg", n=12)]
    path = tmp_path / "Batch_5123_batch_results.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(crowd_study.MTURK_COLUMNS)
        w.writerows(good[:3])
        w.writerow(mturk_row("A5V", "a3f9c2e1b0d4", "smile", status="Rejected", n=13))
        fh.write("3HITGARBLED,Is this\x00 per\ufffdson smiling?,A9\n")  # garbled row
        w.writerows(good[3:] + bad)
    parsed = read_results(path, known_items=known)
    assert parsed.format == "mturk"
    assert len(parsed.answers) == 7
    assert parsed.skipped == {"rejected assignment": 1}
    assert len(parsed.problems) == 6, parsed.problems
    for needle in ("empty answer", "unknown item id 'ffffffffffff'", "'maybe'", "not valid JSON",
                   "does not end in <item_id>.png", "fields"):
        assert any(needle in p for p in parsed.problems), needle
    got = {(a.worker, a.item_id): a.smile for a in parsed.answers}
    assert got == {("A1X", "a3f9c2e1b0d4"): True, ("A2Y", "a3f9c2e1b0d4"): False,
                   ("A1X", "b1b2b3b4b5b6"): True, ("A2Y", "b1b2b3b4b5b6"): False,
                   ("A3Z", "c0ffee000001"): False, ("A3Z", "d00d00d00d00"): True,
                   ("A3Z", "e1e1e1e1e1e1"): False}


def test_label_studio_export_with_cancelled_and_empty_tasks(tmp_path):
    def ann(worker, *choices, cancelled=False, name="smile"):
        result = [{"from_name": name, "to_name": "image", "type": "choices",
                   "value": {"choices": list(choices)}}] if choices else []
        return {"id": 1, "completed_by": worker, "was_cancelled": cancelled, "result": result,
                "lead_time": 3.2}

    tasks = [
        {"id": 1, "data": {"image": "/data/upload/1/a3f9c2e1b0d4.png", "item_id": "a3f9c2e1b0d4"},
         "annotations": [ann(3, "Smile")]},
        {"id": 2, "data": {"image": "https://s3.example.org/b1b2b3b4b5b6.png?sig=1"},
         "annotations": [ann({"id": 7, "email": "w@example.org"}, "No_smile")]},
        {"id": 3, "data": {"item_id": "c0ffee000001"},
         "annotations": [ann(3, "Smile", cancelled=True), ann(8, " no  SMILE ")]},
        {"id": 4, "data": {"item_id": "d00d00d00d00"}, "annotations": []},
        {"id": 5, "data": {"item_id": "0123456789ab"}, "annotations": [ann(3, "Smile")]},
        {"id": 6, "data": {"item_id": "d00d00d00d00"}, "annotations": [ann(3)]},
        {"id": 7, "data": {"item_id": "d00d00d00d00"}, "annotations": [ann(8, "Maybe")]},
    ]
    path = tmp_path / "project-1-at-2024-03-04.json"
    path.write_text(json.dumps(tasks))
    parsed = read_results(path, known_items={"a3f9c2e1b0d4", "b1b2b3b4b5b6", "c0ffee000001",
                                             "d00d00d00d00"})
    assert parsed.format == "label-studio"
    got = {(a.worker, a.item_id): a.smile for a in parsed.answers}
    assert got == {("3", "a3f9c2e1b0d4"): True, ("7", "b1b2b3b4b5b6"): False,
                   ("8", "c0ffee000001"): False}
    assert parsed.skipped == {"cancelled annotation": 1, "task without annotations": 1}
    assert len(parsed.problems) == 3, parsed.problems
    assert parsed.n_records == 7


@pytest.mark.parametrize("content", [
    b"", b"\xff\xfe\x00garbage\x00\x01", b"HITId,WorkerId\n1,2\n", b"[1, 2, \"x\", null]",
    b'{"annotations": "x"}', b'[{"data": 5, "annotations": [{"result": 3}, 7]}]', b"[{",
    b"HITId,WorkerId,Input.image_url,Answer.smile\n", b"\n\n\n",
    b'WorkerId,Input.image_url,Answer.taskAnswers\nW,x.png,"[1]"\nW,y.png,"{}"\nW,z.png,"[]"\n',
])
def test_malformed_results_never_raise(tmp_path, content):
    path = tmp_path / "results.csv"
    path.write_bytes(content)
    parsed = read_results(path, known_items={"x", "y", "z"})
    assert parsed.answers == []
    if content.strip():
        assert parsed.problems


def test_mapping_and_truth_problems_are_reported(tmp_path):
    mapping = tmp_path / "m.csv"
    mapping.write_text(",".join(MAPPING_COLUMNS) + "\n"
                       "a1,k:0,original,,item,,0.8\n"
                       "a2,k:0,gan,12,item,,0.8\n"
                       "a3,k:0,cartoon,,item,,\n"  # unknown version
                       "a4,k:1,3d,x,gold,smile,1.7\n"  # bad seed and joy
                       "a1,k:2,original,,item,,\n")  # duplicate id
    truth = tmp_path / "t.csv"
    truth.write_text("original_key,label\nk:0,Smile\nk:1,0\nk:2,perhaps\n")
    rows, problems = read_mapping(mapping)
    assert set(rows) == {"a1", "a2"} and rows["a2"].seed == 12 and rows["a1"].joy == 0.8
    assert len(problems) == 3
    labels, problems = read_truth(truth)
    assert labels == {"k:0": True, "k:1": False} and len(problems) == 1


# --- analysis ---------------------------------------------------------------------------------


def test_majority_vote_at_consensus_levels(hand_made):
    a = hand_made
    levels = {c.level: (c.n_reached, c.majority_accuracy) for c in a.consensus}
    assert levels == {0.5: (5, pytest.approx(2.5 / 5)), 0.75: (3, pytest.approx(2 / 3)),
                      0.9: (2, pytest.approx(0.5))}
    (v,) = a.versions
    assert (v.n_images, v.n_answers, v.n_correct) == (5, 50, 27) and v.accuracy == 0.54
    # Equal answers per image: the clustered CI is the t-interval of per-image accuracies.
    acc = np.array([1.0, 0.8, 0.3, 0.5, 0.1])
    low, high = stats.t.interval(0.95, 4, loc=acc.mean(), scale=stats.sem(acc))
    assert (v.ci_low, v.ci_high) == (pytest.approx(max(low, 0)), pytest.approx(high))
    assert a.tests == []  # one version: nothing to compare


def test_joy_evidence_is_the_logit_in_half_unit_bins(hand_made):
    a = hand_made
    ev = {i.original_key: i.evidence for i in a.images}
    assert ev["k1"] == 0.0 and ev["k2"] == pytest.approx(math.log(0.7 / 0.3))
    assert ev["k4"] is None and a.n_images_without_joy == 1
    bins = {(b.low, b.high): (b.n_images, b.mean_accuracy) for b in a.joy_bins}
    # k1 (0.0) -> [0, 0.5); k2 (0.847) and k5 (0.895) -> [0.5, 1); k3 (-1.386) -> [-1.5, -1)
    assert bins == {(-1.5, -1.0): (1, pytest.approx(0.3)), (0.0, 0.5): (1, pytest.approx(1.0)),
                    (0.5, 1.0): (2, pytest.approx(0.45))}


def test_workers_sampled_curve_rises_to_the_full_crowd_majority(crowd_study):
    study = crowd_study(60, 21, {"original": 0.8, "gan": 0.65}, seed=3, drop=0.1)
    a = analyze(study.parsed(), study.mapping, study.truth, seed=5, draws=10)
    for curve in a.curves:
        acc = np.array(curve.accuracy)
        assert curve.k == list(range(1, len(acc) + 1))
        full = next(c.majority_accuracy for c in a.consensus
                    if c.version == curve.version and c.level == 0.5)
        assert acc[-1] == pytest.approx(full)  # every answer used: the full-crowd vote
        assert acc[0] == pytest.approx(study.correct[curve.version] /
                                       study.total[curve.version], abs=0.03)
        odd = acc[::2]  # ties make each even k equal its odd k - 1 in expectation
        assert np.all(np.diff(odd) >= -0.02)
        assert acc[-1] > acc[0] + 0.1
    again = analyze(study.parsed(), study.mapping, study.truth, seed=5, draws=10)
    assert again.curves == a.curves  # seeded


def test_gold_and_repeats_check_workers_not_versions():
    mapping = mapping_of(("it1", "k1", "original", None, "item", None, 0.9),
                         ("rp1", "k1", "original", None, "repeat", None, 0.9),
                         ("gd1", "g1", "original", None, "gold", True, None),
                         ("gd2", "g2", "original", None, "gold", False, None))
    answers = [Answer("good", "it1", True, ""), Answer("good", "rp1", True, ""),
               Answer("good", "gd1", True, ""), Answer("good", "gd2", False, ""),
               Answer("bad", "it1", True, ""), Answer("bad", "rp1", False, ""),
               Answer("bad", "gd1", False, ""), Answer("bad", "gd2", True, "")]
    a = analyze(ParsedResults("x", "mturk", answers), mapping, {"k1": True})
    (v,) = a.versions
    assert (v.n_images, v.n_answers, v.n_correct) == (1, 2, 2)  # gold and repeats left out
    workers = {w.worker: w for w in a.workers}
    assert (workers["good"].gold_accuracy, workers["good"].consistency) == (1.0, 1.0)
    assert (workers["bad"].gold_accuracy, workers["bad"].consistency) == (0.0, 0.0)
    assert workers["bad"].n_repeat_pairs == 1 and workers["bad"].n_gold == 2
    assert a.low_gold_workers == ["bad"]


def test_figures_and_html_from_an_analysis(hand_made):
    a = hand_made
    a.problems.append("line 9: unrecognised answer '<script>alert(1)</script>'")
    figures = make_figures(a)
    assert set(figures) == {"accuracy", "differences", "workers", "joy"}
    assert all(isinstance(f, Figure) and f.axes for f in figures.values())
    page = render_html(a, {name: f"{name}.png" for name in figures})
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert "&lt; 0.001" not in page  # no t-test with one version


# --- the command ------------------------------------------------------------------------------


def test_crowd_report_cli_end_to_end(tmp_path, crowd_study):
    study = crowd_study(60, 12, {"original": 0.85, "gan": 0.75, "3d": 0.76}, seed=11)
    mapping, truth, results = study.write(tmp_path)
    with results.open("a", newline="") as fh:  # one rejected and one unknown assignment
        w = csv.writer(fh)
        w.writerow(study.mturk_row("AREJ", next(iter(study.mapping)), "smile", status="Rejected"))
        w.writerow(study.mturk_row("AXX", "0000deadbeef", "smile"))
    out = tmp_path / "report"
    proc = subprocess.run([sys.executable, "-m", "studio", "crowd-report", str(results),
                           str(out), "--truth", str(truth), "--mapping", str(mapping)],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "problems: 1 " in proc.stdout and "0000deadbeef" in proc.stdout
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs == {"accuracy.png", "differences.png", "workers.png", "joy.png"}
    page = (out / "index.html").read_text()
    assert set(re.findall(r"<img src='([^']+)'", page)) == pngs
    summary = json.loads((out / "summary.json").read_text())
    assert summary["format"] == "mturk" and summary["n_problems"] == 1
    assert summary["skipped"] == {"rejected assignment": 1}
    assert summary["n_answers"] == len(study.answers)
    for v in summary["versions"]:
        expected = study.correct[v["version"]] / study.total[v["version"]]
        assert v["accuracy"] == pytest.approx(expected)
        assert v["ci_low"] < v["accuracy"] < v["ci_high"]
    assert [(t["a"], t["b"]) for t in summary["tests"]] == [("original", "gan"),
                                                           ("original", "3d"), ("gan", "3d")]
    assert summary["tests"][0]["t"] > 0 and len(summary["images"]) == 180
    assert [len(c["accuracy"]) for c in summary["curves"]] == [12, 12, 12]
