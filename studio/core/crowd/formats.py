"""The crowd files: MTurk batch results, Label Studio exports, the private mapping, truth.

Workers only ever see random item ids; the mapping CSV (kept private, written by
``studio export`` and ``studio study``) says which original face and which version (the
original, or its GAN, 3D or in-context surrogate) each id is. Malformed input is counted
and described, never fatal: a crowd batch is expensive, and one garbled row must not hide
the rest.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from studio.core.crowd.tables import CrowdInputError, csv_table, read_text, short

__all__ = ["BASIC_EXPRESSIONS", "KINDS", "MAPPING_COLUMNS", "VERSIONS", "Answer",
           "CrowdInputError", "MappingRow", "ParsedResults", "item_from_url", "parse_expression",
           "parse_label", "read_mapping", "read_results", "read_truth"]

#: The versions of a face a crowd may be shown: the original, then the surrogate methods
#: (``surrogates.names.SURROGATE_METHODS``, which this wing may not import; a test keeps
#: the two in step).
VERSIONS = ("original", "gan", "3d", "context")
KINDS = ("item", "gold", "repeat")
MAPPING_COLUMNS = ("item_id", "original_key", "version", "seed", "kind", "gold_label", "joy")
#: Optional mapping column: the studio's own joy read on the picture shown (the machine
#: baseline); written by ``studio study``.
ITEM_JOY = "item_joy"
#: The seven basic expressions a crowd may also be asked for (Label Studio's second question).
BASIC_EXPRESSIONS = ("Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger")

_SMILE = {"smile", "smiling", "yes", "y", "1", "true", "t"}
_NO_SMILE = {"no smile", "nosmile", "non smile", "not smiling", "not smile", "no", "n", "0",
             "false", "f"}
_ITEM_FILE = re.compile(r"^([0-9A-Za-z_-]+)\.png$", re.IGNORECASE)
_ITEM_ID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")  # what an image URL can name


def parse_label(value: Any) -> bool | None:
    """True for smile, False for no smile, None when the value is not a label we know."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if not isinstance(value, str):
        return None
    text = " ".join(value.strip().lower().replace("_", " ").replace("-", " ").split())
    if text in _SMILE:
        return True
    if text in _NO_SMILE:
        return False
    return None


def parse_expression(value: Any) -> str | None:
    """One of BASIC_EXPRESSIONS (any case), or None."""
    text = value.strip().lower() if isinstance(value, str) else None
    return next((e for e in BASIC_EXPRESSIONS if e.lower() == text), None)


def item_from_url(url: str) -> str | None:
    """The item id of an image URL ending in <item_id>.png (fragment ignored; a query string
    too, except Label Studio's local-files form /data/local-files/?d=<path>/<item_id>.png)."""
    try:
        parts = urlsplit(url.strip())
        path = unquote(parts.path)
        if path.rstrip("/").endswith("/data/local-files"):
            path = next((unquote(v) for k, _, v in (q.partition("=") for q in
                                                     parts.query.split("&")) if k == "d"), "")
    except ValueError:  # e.g. "http://[::1/x.png": an invalid IPv6 host
        return None
    match = _ITEM_FILE.match(PurePosixPath(path).name)
    return match.group(1) if match else None


# --- the private mapping and the truth --------------------------------------------------------


@dataclass(frozen=True)
class MappingRow:
    item_id: str
    original_key: str
    version: str
    seed: int | None
    kind: str
    gold_label: bool | None
    joy: float | None
    item_joy: float | None = None  # the studio's joy on the picture shown, when recorded


def _dict_rows(path: Path, required: Iterable[str]) -> tuple[list[tuple[int, dict]], list[str]]:
    """(line, column -> stripped value) per usable row, and the rows that were not usable.

    Only columns the studio does not read (such as the mapping's original_path) may hold
    line breaks; one elsewhere is a stray quote (see csv_table).
    """
    required = tuple(required)
    try:
        header, _, records = csv_table(read_text(path), multiline=lambda c: c not in required)
    except ValueError as exc:
        raise CrowdInputError(f"{path}: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise CrowdInputError(f"{path}: missing column(s) {', '.join(missing)}")
    rows, problems = [], []
    for record in records:
        if record.fields is None:
            problems.append(f"{path.name} line {record.line}: {record.problem}")
        else:
            rows.append((record.line, {k: v.strip() for k, v in zip(header, record.fields,
                                                                     strict=True)}))
    return rows, problems


def read_mapping(path: Path) -> tuple[dict[str, MappingRow], list[str]]:
    """item_id -> MappingRow, plus the rows that could not be used and why."""
    rows, problems = _dict_rows(Path(path), MAPPING_COLUMNS)
    mapping: dict[str, MappingRow] = {}
    for line, r in rows:
        where = f"{Path(path).name} line {line}"
        item, version, kind = r["item_id"], r["version"].lower(), r["kind"].lower()
        reasons = []
        if not item:
            reasons.append("empty item_id")
        elif not _ITEM_ID.match(item):
            reasons.append(f"item_id {short(item)} is not letters, digits, _ and -")
        elif item in mapping:
            reasons.append(f"duplicate item_id {item}")
        if not r["original_key"]:
            reasons.append("empty original_key")
        if version not in VERSIONS:
            reasons.append(f"unknown version {short(r['version'])}")
        if kind not in KINDS:
            reasons.append(f"unknown kind {short(r['kind'])}")
        gold = parse_label(r["gold_label"]) if r["gold_label"] else None
        if r["gold_label"] and gold is None:
            reasons.append(f"unknown gold_label {short(r['gold_label'])}")
        try:
            seed = int(r["seed"]) if r["seed"] else None
        except ValueError:
            reasons.append(f"seed {short(r['seed'])} is not an integer")
        joy, item_joy = (_unit(r.get(c, ""), c, reasons) for c in ("joy", ITEM_JOY))
        if reasons:
            problems.append(f"{where}: {'; '.join(reasons)}")
            continue
        mapping[item] = MappingRow(item, r["original_key"], version, seed, kind, gold, joy,
                                   item_joy)
    return mapping, problems


def _unit(text: str, column: str, reasons: list[str]) -> float | None:
    """A value in [0, 1] or None when empty; a reason is added when it is neither."""
    try:
        value = float(text) if text else None
        if value is not None and not 0 <= value <= 1:
            raise ValueError
    except ValueError:
        reasons.append(f"{column} {short(text)} is not in [0, 1]")
        return None
    return value


def read_truth(path: Path) -> tuple[dict[str, bool], list[str]]:
    """original_key -> smiling, from label smile/no_smile (or 1/0, yes/no, true/false)."""
    rows, problems = _dict_rows(Path(path), ("original_key", "label"))
    truth: dict[str, bool] = {}
    for line, r in rows:
        label = parse_label(r["label"])
        if not r["original_key"] or label is None:
            problems.append(f"{Path(path).name} line {line}: unusable truth row "
                            f"({short(r['original_key'])}, {short(r['label'])})")
            continue
        truth[r["original_key"]] = label
    return truth, problems


# --- crowd results ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    worker: str
    item_id: str
    smile: bool
    where: str  # "line 12" or "task 7 annotation 2", for problem reports
    expression: str | None = None  # one of BASIC_EXPRESSIONS, when the worker was asked


@dataclass
class ParsedResults:
    """Answers read from one batch file, and everything that was skipped or unusable."""

    source: str
    format: str  # "mturk" or "label-studio"
    answers: list[Answer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count (not errors)
    n_records: int = 0  # CSV rows or Label Studio annotations read
    _seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def add(self, answer: Answer, known: Collection[str] | None) -> None:
        """Keep an answer unless its item is unknown or the worker already answered it."""
        if known is not None and answer.item_id not in known:
            self.problems.append(f"{answer.where}: unknown item id {short(answer.item_id)}")
        elif (answer.worker, answer.item_id) in self._seen:
            self.problems.append(f"{answer.where}: worker {short(answer.worker)} answered item "
                                 f"{answer.item_id} again; the first answer is kept")
        else:
            self._seen.add((answer.worker, answer.item_id))
            self.answers.append(answer)


def read_results(path: Path, known_items: Collection[str] | None = None) -> ParsedResults:
    """An MTurk batch-results CSV or a Label Studio JSON export, told apart by content.

    Items missing from known_items (the mapping) are reported, not kept.
    """
    path = Path(path)
    text = read_text(path)
    if text.lstrip()[:1] in ("[", "{") or (path.suffix.lower() == ".json" and text.strip()):
        return _read_label_studio(text, str(path), known_items)
    return _read_mturk(text, str(path), known_items)


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


def _read_mturk(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, "mturk")
    try:
        header, _, records = csv_table(text, multiline=_free_text)
    except ValueError as exc:
        out.problems.append(f"not a CSV file we can read: {exc}")
        return out
    if not header:
        out.problems.append("the file is empty")
        return out
    missing = _mturk_header(header)
    if missing:
        out.problems.append(f"not an MTurk batch file we can read: missing {', '.join(missing)}")
        return out
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


def _ls_choice(result: Any) -> bool:
    if not isinstance(result, list):
        raise ValueError(f"result is {_kind(result)}, expected a list")
    choices = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"
               and r.get("from_name") != "expression"]
    named = [r for r in choices if r.get("from_name") == "smile"]
    picked = named or choices
    if len(picked) != 1:
        raise ValueError(f"{len(picked)} smile choice results, expected 1")
    value = picked[0].get("value")
    if not isinstance(value, dict):
        raise ValueError(f"the choice's value is {_kind(value)} ({short(value)}), expected an "
                         "object with choices")
    values = value.get("choices")
    if not isinstance(values, list) or len(values) != 1:
        raise ValueError(f"choices {short(values)}, expected a list of exactly one")
    label = parse_label(values[0])
    if label is None:
        raise ValueError(f"unrecognised choice {short(values[0])}")
    return label


def _read_label_studio(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, "label-studio")
    try:
        tasks = json.loads(text)
    except ValueError as exc:
        out.problems.append(f"not valid JSON ({exc})")
        return out
    except RecursionError:
        out.problems.append("the JSON is nested too deeply to read; it is not a Label Studio "
                            "export")
        return out
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        out.problems.append(f"the JSON is {_kind(tasks)}, not a list of Label Studio tasks")
        return out
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            out.problems.append(f"task #{i + 1}: {_kind(task)}, not an object")
            continue
        task_id = task.get("id")
        where = f"task {task_id}" if isinstance(task_id, int | str) and len(str(task_id)) < 40 \
            else f"task #{i + 1}"
        annotations = task.get("annotations")
        if not annotations:
            out.skipped["task without annotations"] += 1
            continue
        data = task.get("data") if isinstance(task.get("data"), dict) else {}
        item = data.get("item_id")
        if not isinstance(item, str) or not item.strip():
            image = data.get("image")
            item = item_from_url(image) if isinstance(image, str) else None
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
            out.add(Answer(worker, item.strip(), smile, a_where,
                           _ls_expression(ann.get("result"))), known)
    return out
