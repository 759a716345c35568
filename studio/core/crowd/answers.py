"""A crowd's answers, whatever file they came in: labels, item ids and what was skipped.

The readers of each format (``mturk``, ``labelstudio``) turn their records into ``Answer``s
collected in one ``ParsedResults``; ``formats.read_results`` tells the formats apart.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from studio.core.crowd.tables import short

#: The seven basic expressions a crowd may also be asked for (Label Studio's second question).
BASIC_EXPRESSIONS = ("Neutral", "Happiness", "Sadness", "Surprise", "Fear", "Disgust", "Anger")

_SMILE = {"smile", "smiling", "yes", "y", "1", "true", "t"}
_NO_SMILE = {"no smile", "nosmile", "non smile", "not smiling", "not smile", "no", "n", "0",
             "false", "f"}
_ITEM_FILE = re.compile(r"^([0-9A-Za-z_-]+)\.png$", re.IGNORECASE)


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


@dataclass(frozen=True)
class Answer:
    worker: str
    item_id: str
    smile: bool
    where: str  # "line 12" or "task 7 annotation 2", for problem reports
    expression: str | None = None  # one of BASIC_EXPRESSIONS, when the worker was asked


@dataclass
class ParsedResults:
    """Answers read from one batch file, and everything that was skipped or unusable.

    ``unread`` says why the file as a whole could not be read (not the format it claims, a
    column named twice...): then nothing in it was read, and no report may be made of it.
    """

    source: str
    format: str  # "mturk", "label-studio", "label-studio JSON-MIN" or "label-studio CSV"
    answers: list[Answer] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)  # reason -> count (not errors)
    n_records: int = 0  # CSV rows or Label Studio annotations read
    unread: str = ""
    _seen: set[tuple[str, str]] = field(default_factory=set, repr=False)

    def refuse(self, why: str) -> ParsedResults:
        """The file as a whole cannot be read: say why (also as a problem) and stop."""
        self.unread = why
        self.problems.append(why)
        return self

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
