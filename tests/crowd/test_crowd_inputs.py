"""Malformed crowd files and unwritable report folders: described problems, never a traceback.

Each broken file is built from a valid simulated study (``crowd_study``), read by the core
functions and by the real ``studio crowd-report`` command in a subprocess.
"""

from __future__ import annotations

import copy
import csv
import html
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.cli import main
from studio.core.assets import check_writable_dir
from studio.core.crowd.formats import (
    MAPPING_COLUMNS,
    CrowdInputError,
    read_mapping,
    read_results,
    read_truth,
)
from studio.core.crowd.report import write_report
from studio.core.crowd.statistics import load_and_analyze
from studio.core.crowd.tables import short
from studio.core.errors import StudioError

ROOT = Path(__file__).resolve().parents[2]
LIMIT = csv.field_size_limit()


def crowd_report(results: Path, mapping: Path, truth: Path, out: Path,
                 *extra: str) -> subprocess.CompletedProcess:
    # A strict UTF-8 terminal, as on most desktops (a C locale would escape what it cannot
    # encode and hide failures to print text from the input files).
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    proc = subprocess.run([sys.executable, "-m", "studio", "crowd-report", str(results),
                           str(out), "--truth", str(truth), "--mapping", str(mapping), *extra],
                          capture_output=True, encoding="utf-8", errors="replace", timeout=180,
                          cwd=ROOT, env=env)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture
def study_files(crowd_study, tmp_path) -> tuple:
    """17 originals x 15 workers: an MTurk file of exactly 256 lines (header + 255 rows),
    written to tmp_path; the study, mapping, truth and results."""
    study = crowd_study(17, 15, {"original": 0.8}, seed=4)
    return (study, *study.write(tmp_path))


def edit_line(path: Path, line: int, edit: Callable[[str], str]) -> None:
    lines = path.read_text().splitlines(keepends=True)
    new = edit(lines[line - 1])
    assert new != lines[line - 1]
    lines[line - 1] = new
    path.write_text("".join(lines))


# --- each broken file: core functions and the command -----------------------------------------


def _ls_value_string(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    tasks = s.label_studio(d / "export.json")
    tasks[2]["annotations"][3]["result"][0]["value"] = "Smile"
    (d / "export.json").write_text(json.dumps(tasks))
    return d / "export.json"


def _ls_deep(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    (d / "export.json").write_text("[" * 100_000 + "]" * 100_000)
    return d / "export.json"


def _mturk_deep_task_answers(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    deep = "[" * 100_000  # under the field limit, far over the JSON parser's depth
    edit_line(r, 12, lambda line: re.sub(r",(no_)?smile,,,\n$", f",,{deep},,\n", line))
    return r


def _mturk_unclosed_quote(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    edit_line(r, 7, lambda line: line.replace(",smile,", ',"smile,').replace(",no_smile,",
                                                                             ',"no_smile,'))
    return r


def _mturk_quote_pair_stitches_rows(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    # Quotes opening Input.image_url on lines 3 and 4: an old reader glued line 3's worker
    # to line 4's image and answer, with the right number of fields.
    for line in (3, 4):
        edit_line(r, line, lambda text: text.replace(",https://", ',"https://'))
    return r


def _mturk_bad_ipv6_url(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    edit_line(r, 9, lambda line: line.replace("https://bucket.s3.amazonaws.com/",
                                              "http://[::1/"))
    return r


def _truth_overlong(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    edit_line(t, 5, lambda line: line.replace("smile", "smile" + "x" * (LIMIT + 10)))
    return r


def _mapping_overlong(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    edit_line(m, 4, lambda line: line.replace(",item,", f",item,{'9' * (LIMIT + 10)}"))
    return r


def _mapping_unclosed_quote(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    edit_line(m, 6, lambda line: line.replace(",original,", ',"original,'))
    return r


CASES = {  # name -> (make results, problem named, answers kept of 255, exit code)
    "label-studio value is a string": (_ls_value_string, "task 3 annotation 4: the choice's "
                                       "value is a string ('Smile')", 254, 0),
    "taskAnswers nested too deeply": (_mturk_deep_task_answers,
                                      "line 12: Answer.taskAnswers is nested too deeply", 254, 0),
    "unclosed quote in MTurk": (_mturk_unclosed_quote,
                                "line 7: an unclosed quote in column 'Answer.smile' swallows "
                                "the next 249 rows (up to the end of the file)", 254, 0),
    "quote pair in MTurk": (_mturk_quote_pair_stitches_rows,
                            "line 3: an unclosed quote in column 'Input.image_url' swallows "
                            "the next 1 row (up to line 4)", 253, 0),
    "invalid IPv6 URL": (_mturk_bad_ipv6_url, "line 9: image URL 'http://[::1/", 254, 0),
    "over-long truth field": (_truth_overlong, f"truth.csv line 5: a field is longer than "
                              f"{LIMIT} characters", 255, 0),
    "over-long mapping field": (_mapping_overlong, f"mapping.csv line 4: a field is longer "
                                f"than {LIMIT} characters", 240, 0),
    "unclosed quote in mapping": (_mapping_unclosed_quote,
                                  "mapping.csv line 6: an unclosed quote in column 'version' "
                                  "swallows the next 12 rows (up to the end of the file)", 240,
                                  0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_broken_file_is_a_named_problem_in_core_and_command(tmp_path, case, study_files):
    make, needle, kept, code = CASES[case]
    study, mapping, truth, results = study_files
    assert len(results.read_text().splitlines()) == 256 and len(study.answers) == 255
    results = make(tmp_path, study, mapping, truth, results)

    a = load_and_analyze(results, mapping, truth)
    assert any(needle in p for p in a.problems), a.problems[:5]
    assert a.n_answers == kept
    if kept:  # everything else still analysed: every original with all its answers left
        assert a.versions[0].n_answers >= kept - 15

    out = tmp_path / "report"
    proc = crowd_report(results, mapping, truth, out)
    assert proc.returncode == code, proc.stderr
    assert needle in proc.stdout
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert any(needle in p for p in summary["problems"]) and summary["n_answers"] == kept
    assert html.escape(needle) in (out / "index.html").read_text(encoding="utf-8")


# --- files that cannot be read as a whole: refused, and no report is written ---------------


def add_column(path: Path, name: str, value: Callable[[list[str]], str]) -> None:
    """A column appended to a CSV file: ``name`` in the header, value(row) in every row."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    with path.open("w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([[*rows[0], name], *([*r, value(r)] for r in rows[1:])])


def _results_worker_twice(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    add_column(r, "WorkerId", lambda row: "AEVIL")  # read last-wins, every answer was AEVIL's
    return r


def _results_answer_twice(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    add_column(r, "Answer.smile", lambda row: "no_smile" if row[13] == "smile" else "smile")
    return r


def _truth_label_twice(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    add_column(t, "label", lambda row: "no_smile" if row[1] == "smile" else "smile")
    return r


def _mapping_version_twice(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    add_column(m, "version", lambda row: "gan")  # read last-wins, every item became "gan"
    return r


def _results_utf16_without_bom(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    r.write_bytes(r.read_text(encoding="utf-8").encode("utf-16-le"))
    return r


def _label_studio_tsv(d: Path, s, m: Path, t: Path, r: Path) -> Path:
    path = d / "project-1.tsv"
    path.write_text("annotation_id\tannotator\tid\timage\titem_id\tsmile\n"
                    f"1\tw@lab.example\t1\t{s.URL.format('a1')}\ta1\tSmile\n")
    return path


REFUSED = {  # name -> (make the file, what the one-line message says)
    "WorkerId twice in the results": (_results_worker_twice, "duplicated column 'WorkerId'"),
    "Answer.smile twice in the results": (_results_answer_twice,
                                          "duplicated column 'Answer.smile'"),
    "label twice in the truth": (_truth_label_twice, "truth.csv: line 1: duplicated column "
                                 "'label'"),
    "version twice in the mapping": (_mapping_version_twice, "mapping.csv: line 1: duplicated "
                                     "column 'version'"),
    "UTF-16 without its byte-order mark": (_results_utf16_without_bom, "encoding"),
    "Label Studio JSON nested too deeply": (_ls_deep, "nested too deeply"),
    "Label Studio TSV": (_label_studio_tsv, "TSV export is not read"),
}


@pytest.mark.parametrize("case", list(REFUSED))
def test_a_file_that_cannot_be_read_whole_is_refused_without_a_report(tmp_path, case, capsys,
                                                                      study_files):
    make, needle = REFUSED[case]
    study, mapping, truth, results = study_files
    results = make(tmp_path, study, mapping, truth, results)
    with pytest.raises(CrowdInputError, match=re.escape(needle)):
        load_and_analyze(results, mapping, truth)
    out = tmp_path / "report"
    code = main(["crowd-report", str(results), str(out), "--truth", str(truth), "--mapping",
                 str(mapping)])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.startswith("error: "), err
    assert err.count("\n") == 1  # one line
    assert not out.exists()  # no report of a file that was not read


BOM_ENCODINGS = ["utf-16", "utf-8-sig", "utf-32"]  # Python's utf-16/32 write a byte-order mark


@pytest.mark.parametrize("encoding", BOM_ENCODINGS)
def test_files_with_a_byte_order_mark_give_the_same_answers(tmp_path, encoding, capsys,
                                                            study_files):
    _, mapping, truth, results = study_files
    expected = load_and_analyze(results, mapping, truth).to_dict()
    for path in (mapping, truth, results):
        path.write_bytes(path.read_text(encoding="utf-8").encode(encoding))
    assert results.read_bytes()[:2] in (b"\xff\xfe", b"\xfe\xff", b"\xef\xbb")
    got = load_and_analyze(results, mapping, truth).to_dict()
    assert got == expected and got["n_answers"] == 255 and not got["problems"]
    if encoding == "utf-16":  # the command, once
        out = tmp_path / "report"
        assert main(["crowd-report", str(results), str(out), "--truth", str(truth),
                     "--mapping", str(mapping)]) == 0
        assert json.loads((out / "summary.json").read_text())["n_answers"] == 255
        assert "255 answers kept" in capsys.readouterr().out


def label_studio_flat(study, path: Path) -> list[dict]:
    """The study as Label Studio writes JSON-MIN (a .json path) or CSV (label_studio_sdk's
    converter): one record per annotation, the task's data fields, its id, annotator (the
    user's email), annotation_id, times, and one field per question named after its Choices;
    a task nobody annotated is one record of its data alone. Returns the records."""
    records: list[dict] = []
    items = list(dict.fromkeys(a.item_id for a in study.answers))
    for a in study.answers:
        n = items.index(a.item_id)
        records.append({"image": study.URL.format(a.item_id), "item_id": a.item_id, "id": n + 1,
                        "smile": "Smile" if a.smile else "No smile",
                        "annotator": f"{a.worker.lower()}@lab.example",
                        "annotation_id": len(records) + 1, "lead_time": 3.25,
                        "created_at": "2025-06-02T10:00:00.000000Z",
                        "updated_at": "2025-06-02T10:00:00.000000Z"})
    records[0]["expression"] = "Happiness"
    records[1]["smile"] = {"choices": [records[1]["smile"]]}  # a multiple-choice question
    records.append({"image": study.URL.format(items[0]), "item_id": items[0], "id": 999})
    if path.suffix == ".json":
        path.write_text(json.dumps(records, indent=2))
    else:
        keys = sorted({k for r in records for k in r})
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=keys, quoting=csv.QUOTE_NONNUMERIC)
            w.writeheader()
            w.writerows({k: json.dumps(v) if isinstance(v, dict) else v
                         for k, v in r.items()} for r in records)
    return records


@pytest.mark.parametrize(("name", "fmt"), [("project-1-at-2025-06-02-min.json",
                                            "label-studio JSON-MIN"),
                                           ("project-1-at-2025-06-02.csv", "label-studio CSV")])
def test_label_studio_json_min_and_csv_exports_are_read(tmp_path, name, fmt, capsys, study_files):
    study, mapping, truth, _ = study_files
    results = tmp_path / name
    label_studio_flat(study, results)
    parsed = read_results(results, known_items=read_mapping(mapping)[0])
    assert parsed.format == fmt and not parsed.problems and not parsed.unread
    assert parsed.skipped == {"task without annotations": 1} and parsed.n_records == 255
    got = {(a.worker, a.item_id): a.smile for a in parsed.answers}
    assert got == {(f"{a.worker.lower()}@lab.example", a.item_id): a.smile
                   for a in study.answers}
    assert [a.expression for a in parsed.answers[:2]] == ["Happiness", None]
    out = tmp_path / "report"
    assert main(["crowd-report", str(results), str(out), "--truth", str(truth), "--mapping",
                 str(mapping)]) == 0
    assert f"({fmt}): 255 records, 255 answers kept" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_answers"] == 255 and summary["versions"][0]["n_answers"] == 255


def test_a_report_is_never_replaced_unless_told(tmp_path, capsys, study_files):
    _, mapping, truth, results = study_files
    out = tmp_path / "report"
    args = ["crowd-report", str(results), str(out), "--truth", str(truth), "--mapping",
            str(mapping)]
    assert main(args) == 0
    (out / "index.html").write_text("the earlier report")
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "already holds a crowd report (index.html)" in err and "--overwrite" in err
    assert err.count("\n") == 1 and (out / "index.html").read_text() == "the earlier report"
    assert main([*args, "--overwrite"]) == 0
    assert "Crowd report" in (out / "index.html").read_text()


def test_the_rows_an_unclosed_quote_swallowed_are_read_again(tmp_path, study_files):
    study, mapping, truth, results = study_files
    _mturk_unclosed_quote(tmp_path, study, mapping, truth, results)
    parsed = read_results(results, known_items=read_mapping(mapping)[0])
    assert len(parsed.problems) == 1 and parsed.n_records == 255
    lost = study.answers[5]  # line 7
    got = {(a.worker, a.item_id): a.smile for a in parsed.answers}
    assert got == {(a.worker, a.item_id): a.smile for a in study.answers if a is not lost}


def test_line_breaks_where_they_belong_are_kept(tmp_path, crowd_study):
    """A free-text answer (comments) and an original path may hold line breaks."""
    results = tmp_path / "b.csv"
    with results.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["WorkerId", "Input.image_url", "Answer.smile", "Answer.comments"])
        w.writerow(["W1", crowd_study.URL.format("a1"), "smile", "nice hit,\nthanks, really"])
        w.writerow(["W2", crowd_study.URL.format("a1"), "no_smile", ""])
    parsed = read_results(results, known_items={"a1"})
    assert parsed.problems == [] and len(parsed.answers) == 2
    mapping = tmp_path / "m.csv"
    with mapping.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([*MAPPING_COLUMNS, "original_path"])
        w.writerow(["a1", "k:0", "original", "", "item", "", "0.5", "photos/odd\nname.jpg"])
        w.writerow(["a2", "k:0", "gan", "3", "item", "", "0.5", "photos/b.jpg"])
    rows, problems = read_mapping(mapping)
    assert problems == [] and set(rows) == {"a1", "a2"}


SHAPES = ["Smile", ["Smile"], 1, 2.5, None, True, False, {"x": "Smile"}, [], {}, "",
          json.loads("[" * 60 + "]" * 60)]


def _paths(value, prefix=()):
    yield prefix
    children = value.items() if isinstance(value, dict) else enumerate(value) \
        if isinstance(value, list) else ()
    for key, child in children:
        yield from _paths(child, (*prefix, key))


def test_label_studio_value_of_any_shape_is_counted_once(tmp_path, crowd_study):
    """Every node of a task replaced by every JSON shape: the other tasks are all read, and
    the changed task's one annotation is an answer, a problem or a skip, exactly once."""
    study = crowd_study(3, 2, {"original": 0.8}, seed=1)
    good = study.label_studio(tmp_path / "good.json")
    item = next(iter(study.mapping))
    target = {"id": 99, "data": {"image": study.URL.format(item), "item_id": item},
              "annotations": [{"completed_by": "WX", "was_cancelled": False, "result": [
                  {"from_name": "smile", "to_name": "image", "type": "choices",
                   "value": {"choices": ["Smile"]}}]}]}
    pairs = {(a.worker, a.item_id) for a in study.answers}
    path = tmp_path / "export.json"
    n = 0
    for where in _paths(target):
        for shape in SHAPES:
            task = copy.deepcopy(target)
            if where:
                parent = task
                for key in where[:-1]:
                    parent = parent[key]
                parent[where[-1]] = shape
            else:
                task = shape
            path.write_text(json.dumps([*good, task]))
            parsed = read_results(path, known_items=study.mapping)
            others = [a for a in parsed.answers if (a.worker, a.item_id) in pairs]
            assert len(others) == len(study.answers), (where, shape)
            counted = len(parsed.answers) - len(others) + len(parsed.problems) \
                + sum(parsed.skipped.values())
            assert counted == 1, (where, shape, parsed.problems, parsed.skipped)
            n += 1
    assert n > 150


def test_problem_text_survives_values_too_deep_to_show():
    deep: list = []
    for _ in range(5 * sys.getrecursionlimit()):
        deep = [deep]
    assert short(deep) == "(a value nested too deeply to show)"
    assert short("x" * 10_000) == repr("x" * 10_000)[:59] + "…"


def test_truth_and_mapping_over_long_fields_keep_the_other_rows(tmp_path, study_files):
    study, mapping, truth, _ = study_files
    _truth_overlong(tmp_path, study, mapping, truth, _)
    labels, problems = read_truth(truth)
    assert len(labels) == 16 and len(problems) == 1 and "line 5" in problems[0]
    _mapping_overlong(tmp_path, study, mapping, truth, _)
    rows, problems = read_mapping(mapping)
    assert len(rows) == 16 and len(problems) == 1 and "line 4" in problems[0]


# --- where the report goes --------------------------------------------------------------------


@pytest.mark.parametrize("where", ["proc", "file", "under a file", "read-only folder"])
def test_unwritable_report_folder_fails_at_once_with_one_message(tmp_path, where, study_files,
                                                                 hand_made):
    _, mapping, truth, _ = study_files
    (tmp_path / "file").write_text("not a folder")
    out = {"proc": Path("/proc/studio-crowd-report"), "file": tmp_path / "file",
           "under a file": tmp_path / "file" / "report",
           "read-only folder": tmp_path / "ro" / "report"}[where]
    if where == "proc" and not Path("/proc/self").exists():
        pytest.skip("no /proc on this system")
    if where == "read-only folder":
        (tmp_path / "ro").mkdir(mode=0o555)
        if os.access(tmp_path / "ro", os.W_OK):
            pytest.skip("permissions are not enforced for this user (root)")
    with pytest.raises(StudioError, match="cannot"):
        check_writable_dir(out)
    with pytest.raises(StudioError, match="cannot write the crowd report"):
        write_report(hand_made, out)
    # The results file does not exist: the folder must be refused before it is read.
    proc = crowd_report(tmp_path / "missing.csv", mapping, truth, out)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]  # one line
    assert proc.stderr.startswith("error: cannot ") and str(out) in proc.stderr
    assert "missing.csv" not in proc.stderr and not proc.stdout


def test_a_report_that_fails_midway_leaves_no_index_and_no_partial_file(tmp_path, hand_made,
                                                                         monkeypatch):
    import studio.core.crowd.report as report_module
    from studio.core.assets import atomic_file

    real = report_module.write_atomic

    def full_disk(path, data, *args, **kwargs):
        if Path(path).name == "summary.json":  # the figures are written, then the disk fills
            with atomic_file(path, True) as fh:
                fh.write(data[: len(data) // 2])
                raise OSError(28, "No space left on device")
        return real(path, data, *args, **kwargs)

    monkeypatch.setattr(report_module, "write_atomic", full_disk)
    out = tmp_path / "report"
    with pytest.raises(StudioError, match="No space left"):
        write_report(hand_made, out)
    left = sorted(p.name for p in out.iterdir())
    assert left and all(name.endswith(".png") for name in left), left  # no index, no half


def test_writable_check_creates_nothing(tmp_path):
    new = tmp_path / "a" / "b" / "report"
    check_writable_dir(new)
    check_writable_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_input_folder_and_bad_draws_are_one_line_errors(tmp_path, study_files):
    _, mapping, truth, results = study_files
    for args, needle in (((tmp_path, mapping, truth), "not a file"),
                         ((results, tmp_path / "nope.csv", truth), "no such file"),
                         ((results, mapping, truth, "--draws", "0"), "--draws")):
        proc = crowd_report(*args[:3], tmp_path / "out", *args[3:])
        assert proc.returncode == 2 and needle in proc.stderr, proc.stderr


# --- what comes from outside is escaped -------------------------------------------------------


def test_hostile_and_undecodable_text_is_escaped_in_the_report(tmp_path, study_files):
    study, mapping, truth, _ = study_files
    results = tmp_path / os.fsdecode(b"export-\xff.json")  # not UTF-8: a surrogate in argv
    tasks = study.label_studio(results)
    tasks[0]["annotations"][0]["completed_by"] = "<script>alert(1)</script>"
    tasks[1]["annotations"][0]["completed_by"] = "\ud800"
    tasks[2]["data"] = {"item_id": "<img src=x onerror=alert(1)>"}
    results.write_text(json.dumps(tasks))
    out = tmp_path / "report"
    proc = crowd_report(results, mapping, truth, out)
    assert proc.returncode == 0, proc.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page and "<img src=x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;img src=x" in page
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    workers = {w["worker"] for w in summary["workers"]}
    assert {"<script>alert(1)</script>", "\ud800"} <= workers
    assert "export-" in proc.stdout

