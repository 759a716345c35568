"""The crowd files: MTurk batch results, Label Studio exports, the private mapping, truth.

Workers only ever see random item ids; the mapping CSV (kept private, written by
``studio export`` and ``studio study``) says which original face and which version (the
original, or its GAN, 3D or in-context surrogate) each id is. Malformed rows are counted
and described, never fatal: a crowd batch is expensive, and one garbled row must not hide
the rest. A file that cannot be read as a whole (a column named twice, an encoding without
its byte-order mark, not the format it seems) is refused: no answer is guessed from it.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from studio.core.crowd import labelstudio
from studio.core.crowd.answers import (
    BASIC_EXPRESSIONS,
    Answer,
    ParsedResults,
    item_from_url,
    parse_expression,
    parse_label,
)
from studio.core.crowd.mturk import read_mturk
from studio.core.crowd.tables import CrowdInputError, csv_table, read_text, short

__all__ = ["BASIC_EXPRESSIONS", "KINDS", "MAPPING_COLUMNS", "VERSIONS", "Answer",
           "CrowdInputError", "MappingRow", "ParsedResults", "item_from_url", "parse_expression",
           "parse_label", "read_mapping", "read_results", "read_truth"]

#: The versions of a face a crowd may be shown, with their label and colour in the crowd
#: report: the original, then the candidate methods (``surrogates.registry``, which this
#: wing may not import; a test keeps the two in step).
VERSION_STYLES = {"original": ("original", "#4c72b0"), "gan": ("GAN surrogate", "#dd8452"),
                  "3d": ("3D surrogate", "#55a868"), "context": ("in-context surrogate", "#8172b3"),
                  "context-strict": ("in-context surrogate, strict privacy", "#64b5cd")}
VERSIONS = tuple(VERSION_STYLES)
KINDS = ("item", "gold", "repeat")
MAPPING_COLUMNS = ("item_id", "original_key", "version", "seed", "kind", "gold_label", "joy")
#: Optional mapping column: the studio's own joy read on the picture shown (the machine
#: baseline); written by ``studio study``.
ITEM_JOY = "item_joy"
_ITEM_ID = re.compile(r"^[0-9A-Za-z_-]{1,128}$")  # what an image URL can name


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


def read_results(path: Path, known_items: Collection[str] | None = None) -> ParsedResults:
    """An MTurk batch-results CSV or a Label Studio export (JSON, JSON-MIN or CSV), told apart
    by content.

    Items missing from known_items (the mapping) are reported, not kept. A file that cannot
    be read as a whole is returned with ``unread`` saying why (never a report of it).
    """
    path = Path(path)
    text = read_text(path)
    if text.lstrip()[:1] in ("[", "{") or (path.suffix.lower() == ".json" and text.strip()):
        return labelstudio.read_json(text, str(path), known_items)
    first = next((line for line in text.splitlines() if line.strip()), "")
    if labelstudio.is_csv_header(first):
        return labelstudio.read_csv(text, str(path), known_items)
    if "\t" in first and "annotator" in first.split("\t"):
        return ParsedResults(str(path), "label-studio TSV").refuse(
            "Label Studio's TSV export is not read: export the project as JSON, JSON-MIN or "
            "CSV")
    return read_mturk(text, str(path), known_items)
