"""Label Studio's exports of a study's project: JSON, JSON-MIN and CSV.

JSON (the full export) is a list of tasks, each with its ``data`` (``image``, ``item_id``)
and its ``annotations``, each ``completed_by`` a user id. JSON-MIN and CSV flatten it to one
record per annotation: the task's data fields, one field per question named after its
``Choices`` (``smile``, ``expression``), and ``annotator`` (the user's email, or id). The
worker of an answer is that user id (JSON) or that annotator (JSON-MIN, CSV).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Collection
from typing import Any

from studio.core.crowd.answers import (
    Answer,
    ParsedResults,
    item_from_url,
    parse_expression,
    parse_label,
)
from studio.core.crowd.tables import csv_table, short

#: The columns that tell Label Studio's CSV export (one row per annotation) from MTurk's.
CSV_COLUMNS = ("annotator", "smile")
FORMAT_JSON, FORMAT_MIN, FORMAT_CSV = "label-studio", "label-studio JSON-MIN", \
    "label-studio CSV"
NO_ANNOTATIONS = "task without annotations"


def _ls_worker(completed_by: Any) -> str | None:
    """A Label Studio user id (number or string, or an object with id or email), or None."""
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id", completed_by.get("email"))
    if isinstance(completed_by, bool) or not isinstance(completed_by, int | str):
        return None
    return str(completed_by).strip() or None


def _kind(value: Any) -> str:
    """The JSON name of a parsed value's type, for problem messages."""
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _ls_expression(result: Any) -> str | None:
    """The answer to the optional 7-class question (from_name "expression"), or None."""
    picked = [r for r in result if isinstance(r, dict) and r.get("from_name") == "expression"
              and isinstance(r.get("value"), dict)] if isinstance(result, list) else []
    values = picked[0]["value"].get("choices") if len(picked) == 1 else None
    return parse_expression(values[0]) if isinstance(values, list) and len(values) == 1 \
        else None


def _one_choice(value: Any) -> Any:
    """The one choice of {"choices": [...]}; ValueError unless there is exactly one."""
    if not isinstance(value, dict):
        raise ValueError(f"the choice's value is {_kind(value)} ({short(value)}), expected an "
                         "object with choices")
    values = value.get("choices")
    if not isinstance(values, list) or len(values) != 1:
        raise ValueError(f"choices {short(values)}, expected a list of exactly one")
    return values[0]


def _ls_choice(result: Any) -> bool:
    if not isinstance(result, list):
        raise ValueError(f"result is {_kind(result)}, expected a list")
    choices = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"
               and r.get("from_name") != "expression"]
    named = [r for r in choices if r.get("from_name") == "smile"]
    picked = named or choices
    if len(picked) != 1:
        raise ValueError(f"{len(picked)} smile choice results, expected 1")
    choice = _one_choice(picked[0].get("value"))
    label = parse_label(choice)
    if label is None:
        raise ValueError(f"unrecognised choice {short(choice)}")
    return label


def read_json(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    """A JSON export, or a JSON-MIN one (told apart by its records: no annotations, an
    annotator)."""
    out = ParsedResults(source, FORMAT_JSON)
    try:
        tasks = json.loads(text)
    except ValueError as exc:
        return out.refuse(f"not valid JSON ({exc})")
    except RecursionError:
        return out.refuse("the JSON is nested too deeply to read; it is not a Label Studio "
                          "export")
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        return out.refuse(f"the JSON is {_kind(tasks)}, not a list of Label Studio tasks")
    records = [t for t in tasks if isinstance(t, dict)]
    if not any("annotations" in t for t in records) and any(
            "annotator" in t or "annotation_id" in t for t in records):
        out.format = FORMAT_MIN
        for i, record in enumerate(tasks):
            _flat_record(out, record, f"record #{i + 1}", known)
        return out
    if not any("annotations" in t or "data" in t for t in records):
        return out.refuse("no task has data or annotations: not a Label Studio export (export "
                          "the project as JSON, JSON-MIN or CSV)")
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            out.problems.append(f"task #{i + 1}: {_kind(task)}, not an object")
            continue
        task_id = task.get("id")
        where = f"task {task_id}" if isinstance(task_id, int | str) and len(str(task_id)) < 40 \
            else f"task #{i + 1}"
        annotations = task.get("annotations")
        if not annotations:
            out.skipped[NO_ANNOTATIONS] += 1
            continue
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        item = _item(data)
        if not isinstance(annotations, list):
            out.problems.append(f"{where}: annotations is {_kind(annotations)}, not a list")
            continue
        for j, ann in enumerate(annotations):
            out.n_records += 1
            a_where = f"{where} annotation {j + 1}"
            if isinstance(ann, dict) and ann.get("was_cancelled"):
                out.skipped["cancelled annotation"] += 1
                continue
            try:
                if not isinstance(ann, dict):
                    raise ValueError(f"{_kind(ann)}, not an object")
                if not item:
                    raise ValueError("no data.item_id and no image URL ending in <item_id>.png")
                worker = _ls_worker(ann.get("completed_by"))
                if worker is None:
                    raise ValueError(f"completed_by {short(ann.get('completed_by'))} is not a "
                                     "user id")
                smile = _ls_choice(ann.get("result"))
            except ValueError as exc:
                out.problems.append(f"{a_where}: {exc}")
                continue
            out.add(Answer(worker, item, smile, a_where, _ls_expression(ann.get("result"))),
                    known)
    return out


def _item(data: dict) -> str | None:
    """The item id of a task's data: item_id, or else the image URL's <item_id>.png."""
    item = data.get("item_id")
    if isinstance(item, str) and item.strip():
        return item.strip()
    image = data.get("image")
    return item_from_url(image) if isinstance(image, str) else None


def _flat_choice(value: Any) -> Any:
    """A question's answer in JSON-MIN or CSV: the choice itself when there is one, else
    {"choices": [...]} (in CSV as JSON text)."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return value
    return _one_choice(value) if isinstance(value, dict) else value


def _flat_record(out: ParsedResults, record: Any, where: str,
                 known: Collection[str] | None) -> None:
    """One annotation of JSON-MIN or CSV: annotator, smile, item_id or image."""
    if not isinstance(record, dict):
        out.problems.append(f"{where}: {_kind(record)}, not an object")
        return
    annotator, smile = record.get("annotator"), record.get("smile")
    if annotator in (None, "") and smile in (None, ""):
        out.skipped[NO_ANNOTATIONS] += 1
        return
    out.n_records += 1
    task = record.get("id")
    if isinstance(task, int | str) and str(task).strip() and len(str(task)) < 40:
        where = f"{where} (task {task})"
    try:
        item = _item(record)
        if not item:
            raise ValueError("no item_id and no image URL ending in <item_id>.png")
        worker = _ls_worker(annotator)
        if worker is None:
            raise ValueError(f"annotator {short(annotator)} is not a user")
        if smile in (None, ""):
            raise ValueError("empty smile answer")
        choice = _flat_choice(smile)
        label = parse_label(choice)
        if label is None:
            raise ValueError(f"unrecognised choice {short(choice)}")
        try:
            expression = parse_expression(_flat_choice(record.get("expression")))
        except ValueError:
            expression = None
    except ValueError as exc:
        out.problems.append(f"{where}: {exc}")
        return
    out.add(Answer(worker, item, label, where, expression), known)


def is_csv_header(line: str) -> bool:
    """True when a CSV file's first line is a Label Studio CSV export's header."""
    try:
        header = {h.strip() for h in next(csv.reader([line]), [])}
    except csv.Error:
        return False
    return set(CSV_COLUMNS) <= header and bool({"item_id", "image"} & header)


def read_csv(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, FORMAT_CSV)
    try:
        header, _, records = csv_table(text)
    except ValueError as exc:
        return out.refuse(f"not a CSV file we can read: {exc}")
    for record in records:
        if record.fields is None:
            out.n_records += 1
            out.problems.append(f"line {record.line}: {record.problem}")
            continue
        row = {k: v.strip() for k, v in zip(header, record.fields, strict=True)}
        _flat_record(out, row, f"line {record.line}", known)
    if not out.n_records:
        out.problems.append("the file holds no annotation rows")
    return out
