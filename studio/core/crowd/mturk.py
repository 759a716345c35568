"""MTurk batch results (the Requester UI's *Download CSV*): one row per assignment."""

from __future__ import annotations

import json
from collections.abc import Collection

from studio.core.crowd.answers import (
    Answer,
    ParsedResults,
    item_from_url,
    parse_expression,
    parse_label,
)
from studio.core.crowd.tables import csv_table, short


def _task_answer(raw: str) -> bool:
    """The smile choice in MTurk crowd-form JSON (Answer.taskAnswers); ValueError says why not."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("Answer.taskAnswers is not valid JSON") from None
    except RecursionError:
        raise ValueError("Answer.taskAnswers is nested too deeply") from None
    if isinstance(data, list):
        if len(data) != 1:
            raise ValueError(f"Answer.taskAnswers holds {len(data)} pages, expected 1")
        data = data[0]
    if not isinstance(data, dict) or not data:
        raise ValueError("Answer.taskAnswers holds no answer object")
    if "smile" in data:
        value = data["smile"]
    elif len(data) == 1:
        value = next(iter(data.values()))
    else:
        raise ValueError(f"Answer.taskAnswers has no 'smile' field (fields: "
                         f"{short(sorted(data), 120)})")
    if isinstance(value, dict) and "label" in value:
        value = value["label"]
    elif isinstance(value, dict):  # {"smile": true, "no_smile": false}: radio buttons
        chosen = [k for k, v in value.items()
                  if v is True or (isinstance(v, str) and v.lower() in ("true", "on"))]
        if len(chosen) != 1:
            raise ValueError(f"Answer.taskAnswers selects {len(chosen)} choices, expected 1")
        value = chosen[0]
    label = parse_label(value)
    if label is None:
        raise ValueError(f"unrecognised answer {short(value)} in Answer.taskAnswers")
    return label


def _mturk_answer(row: dict[str, str]) -> bool:
    # "Answer.smile.label": the layout's crowd-image-classifier named smile, in a crowd-form
    # with answer-format="flatten-objects" (studio study's mturk_layout.html).
    direct = row.get("Answer.smile", "") or row.get("Answer.smile.label", "")
    if direct:
        label = parse_label(direct)
        if label is None:
            raise ValueError(f"unrecognised answer {short(direct)}")
        return label
    if row.get("Answer.taskAnswers", ""):
        return _task_answer(row["Answer.taskAnswers"])
    # Classic radio-button forms: one boolean column per choice, Answer.smile.<choice>.
    chosen = [k.removeprefix("Answer.smile.") for k, v in row.items()
              if k.startswith("Answer.smile.") and k != "Answer.smile.label"
              and v.strip().lower() in ("true", "on", "1")]
    if len(chosen) == 1 and parse_label(chosen[0]) is not None:
        return bool(parse_label(chosen[0]))
    raise ValueError("empty answer")


def _mturk_header(header: list[str]) -> list[str]:
    """The columns an MTurk batch file must have that this header lacks."""
    missing = [c for c in ("WorkerId", "Input.image_url") if c not in header]
    if not any(c == "Answer.smile" or c == "Answer.taskAnswers" or c.startswith("Answer.smile.")
               for c in header):
        missing.append("Answer.smile or Answer.taskAnswers")
    return missing


def _free_text(column: str) -> bool:
    """MTurk columns that may hold line breaks: answers the report does not read (comments)."""
    return column.startswith("Answer.") and not (
        column in ("Answer.smile", "Answer.taskAnswers") or column.startswith("Answer.smile."))


def read_mturk(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, "mturk")
    try:
        header, _, records = csv_table(text, multiline=_free_text)
    except ValueError as exc:
        return out.refuse(f"not a CSV file we can read: {exc}")
    if not header:
        return out.refuse("the file is empty")
    missing = _mturk_header(header)
    if missing:
        return out.refuse(f"not an MTurk batch file we can read: missing {', '.join(missing)}")
    for record in records:
        out.n_records += 1
        where = f"line {record.line}"
        if record.fields is None:
            out.problems.append(f"{where}: {record.problem}")
            continue
        row = dict(zip(header, record.fields, strict=True))
        expression = parse_expression(row.get("Answer.expression.label")
                                      or row.get("Answer.expression"))
        if row.get("AssignmentStatus", "").strip().lower() == "rejected":
            out.skipped["rejected assignment"] += 1
            continue
        worker = row["WorkerId"].strip()
        try:
            if not worker:
                raise ValueError("empty WorkerId")
            item = item_from_url(row["Input.image_url"])
            if item is None:
                raise ValueError(f"image URL {short(row['Input.image_url'], 80)} does not end "
                                 "in <item_id>.png")
            smile = _mturk_answer(row)
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        out.add(Answer(worker, item, smile, where, expression), known)
    if not out.n_records:
        out.problems.append("the file holds no assignment rows")
    return out
