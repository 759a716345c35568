"""Crowd CSV files, read defensively and written safely.

Reading: crowd files come from spreadsheets, web exports and hand edits. A field longer than
the csv module's limit, an unbalanced quote that swallows the rest of the file, or
undecodable bytes must each become one described problem on the line where it starts, and
the rows after it must still be read. A file as a whole that cannot be read right (a text
encoding without a byte-order mark, a column named twice) is refused, never guessed at.

Writing: every CSV the crowd wing and ``studio study``/``export`` write goes through
``csv_writer``/``dict_writer``, which escape a cell a spreadsheet would run as a formula.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from studio.core.errors import StudioError

#: Larger files are not crowd batches (100 000 MTurk assignments are about 100 MB); refusing
#: them keeps a wrong file choice from exhausting memory.
MAX_INPUT_BYTES = 512 * 1024 * 1024
#: After this many lines read a second time (see csv_table), a swallowed span is reported
#: but no longer re-read, so that a file full of stray quotes stays linear in time.
REREAD_BUDGET = 200_000
#: Byte-order marks and the encoding each starts (UTF-32's before UTF-16's: FF FE 00 00
#: begins with FF FE). A file without one is read as UTF-8.
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
        (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16"))
#: First characters that make a spreadsheet read a cell as a formula (OWASP, CSV
#: injection): such a cell is written with a leading single quote.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class CrowdInputError(StudioError):
    """A file the crowd report needs is missing, unreadable or has none of the expected
    columns."""


def short(value: Any, limit: int = 60) -> str:
    """repr() of a value from an input file, cut to a readable length for problem lists."""
    try:
        text = repr(value)
    except RecursionError:  # JSON nested almost as deep as the parser allows
        return "(a value nested too deeply to show)"
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def read_text(path: Path) -> str:
    """The whole file as text; CrowdInputError when it is missing, a folder, unreadable or
    implausibly large."""
    path = Path(path)
    try:
        if not path.exists():
            raise CrowdInputError(f"{path}: no such file")
        if not path.is_file():
            raise CrowdInputError(f"{path}: not a file")
        size = path.stat().st_size
        if size > MAX_INPUT_BYTES:
            raise CrowdInputError(f"{path}: {size / 2**20:.0f} MiB is too large for a crowd "
                                  f"file (at most {MAX_INPUT_BYTES // 2**20} MiB)")
        data = path.read_bytes()
    except OSError as exc:
        raise CrowdInputError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return decode(data, path)


def decode(data: bytes, path: Path) -> str:
    """Text by its byte-order mark (UTF-8, UTF-16 or UTF-32; spreadsheets write them), else
    UTF-8. Undecodable bytes are kept visible as U+FFFD so the row that holds them is
    reported, not the whole file; NUL bytes without a mark (UTF-16 or UTF-32 saved without
    one) are refused: read as UTF-8 they would be no column the studio knows."""
    encoding = next((name for bom, name in BOMS if data.startswith(bom)), None)
    if encoding is None and data[:4096].count(0) > len(data[:4096]) // 8:
        raise CrowdInputError(f"{path}: the text encoding cannot be read (NUL bytes without a "
                              "byte-order mark: UTF-16 or UTF-32?); save it as UTF-8")
    return data.decode(encoding or "utf-8", errors="replace")


@dataclass(frozen=True)
class CsvRecord:
    """One record: the physical line it starts on, and its fields or why it was not read."""

    line: int
    fields: list[str] | None
    problem: str | None = None


class _Lines:
    """The file's physical lines as an iterator that can be rewound, so that the lines an
    unbalanced quote swallowed can be read again on their own."""

    def __init__(self, lines: list[str], pos: int) -> None:
        self.lines, self.pos = lines, pos

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _csv_error(exc: csv.Error) -> str:
    if "field limit" in str(exc):
        return f"a field is longer than {csv.field_size_limit()} characters"
    return f"unreadable CSV ({exc})"


def _broken_lines(fields: list[str], header: list[str], multiline: Callable[[str], bool]
                  ) -> list[int]:
    """The fields that hold a line break they may not hold: one in a column that is not free
    text, or lines that look like whole rows of the file (as many commas as the header)."""
    width = len(header)
    return [i for i, f in enumerate(fields) if "\n" in f and (
        i >= width or not multiline(header[i])
        or (width > 1 and any(line.count(",") >= width - 1 for line in f.split("\n")[1:])))]


def _swallowed(header: list[str], col: int | None, first: int, last: int, total: int) -> str:
    """first and last are 1-based physical lines; total is the number of lines."""
    name = "" if col is None else f" in column {short(header[col], 40)}" if col < len(header) \
        else f" in field {col + 1}"
    n = last - first
    end = "the end of the file" if last == total else f"line {last}"
    return f"an unclosed quote{name} swallows the next {n} row{'s' * (n != 1)} (up to {end})"


def _no_line_breaks(column: str) -> bool:
    return False


def csv_table(text: str, multiline: Callable[[str], bool] = _no_line_breaks
              ) -> tuple[list[str], int, Iterator[CsvRecord]]:
    """Header, its line number and the records after it; never raises on the records.

    The header is read from its own line (0 and [] for a file without one). A record with
    the wrong number of fields, an over-long field or any other CSV error is yielded with a
    problem instead of fields. A record that spans several lines with the wrong number of
    fields, or with a line break in a column for which multiline(column) is False, is an
    unbalanced quote: it is reported once, and the lines it swallowed are read again as rows
    of their own, so that a stray quote neither hides rows nor stitches two rows into one.
    """
    lines = io.StringIO(text).readlines()
    start = next((i for i, line in enumerate(lines) if line.strip()), len(lines))
    if start == len(lines):
        return [], 0, iter(())
    try:
        header = [h.strip() for h in next(csv.reader([lines[start]]), [])]
    except csv.Error as exc:
        raise ValueError(f"line {start + 1}: the header is unreadable ({_csv_error(exc)})"
                         ) from None
    twice = [name for name, n in Counter(h for h in header if h).items() if n > 1]
    if twice:  # which of the two is meant cannot be known: the file is refused
        raise ValueError(f"line {start + 1}: duplicated column{'s' * (len(twice) > 1)} "
                         f"{', '.join(short(name, 40) for name in twice)}; keep one of each")
    return header, start + 1, _records(lines, start + 1, header, multiline)


def _records(lines: list[str], pos: int, header: list[str], multiline: Callable[[str], bool]
             ) -> Iterator[CsvRecord]:
    src = _Lines(lines, pos)
    reader = csv.reader(src)
    width, reread = len(header), 0

    def swallowed(first: int, col: int | None, then: str = "") -> CsvRecord:
        """Report the quote at line first + 1 and read the lines it ate again (within the
        budget that keeps a file full of stray quotes linear)."""
        nonlocal reread
        problem = _swallowed(header, col, first + 1, src.pos, len(lines)) + then
        if reread < REREAD_BUDGET:
            reread += src.pos - first - 1
            src.pos = first + 1
            return CsvRecord(first + 1, None, f"{problem}: the row is skipped and the rows "
                                              "after it are read on their own")
        return CsvRecord(first + 1, None, f"{problem}: the row and the rows it swallowed are "
                                          "skipped (too many unclosed quotes to read again)")

    while True:
        first = src.pos
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if src.pos - first > 1:  # a quote ate the lines after the first, then the error
                yield swallowed(first, None, f", then {_csv_error(exc)}")
            else:
                yield CsvRecord(first + 1, None, f"{_csv_error(exc)}: the row is skipped")
            continue
        if not any(f.strip() for f in fields):
            continue  # blank line
        broken = _broken_lines(fields, header, multiline) if src.pos - first > 1 else []
        if broken or (src.pos - first > 1 and len(fields) != width):
            yield swallowed(first, broken[0] if broken else max(
                range(len(fields)), key=lambda i: fields[i].count("\n")))
        elif len(fields) != width:
            yield CsvRecord(first + 1, None, f"{len(fields)} fields, the header has {width}")
        else:
            yield CsvRecord(first + 1, fields)


# --- writing ----------------------------------------------------------------------------------


def safe_cell(value: Any) -> Any:
    """A cell as written: text starting with a FORMULA_PREFIXES character gets a leading
    single quote, so that a spreadsheet shows it rather than running it. Numbers, and text
    that is a number ("-0.5"), are left as they are: a number is never a formula."""
    if not isinstance(value, str) or not value.startswith(FORMULA_PREFIXES):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value


class _SafeWriter:
    """csv.writer whose every cell goes through safe_cell."""

    def __init__(self, fh: TextIO, **kwargs: Any) -> None:
        self._writer = csv.writer(fh, **kwargs)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


class _SafeDictWriter(csv.DictWriter):
    """csv.DictWriter whose every value goes through safe_cell."""

    def writerow(self, rowdict: dict) -> Any:
        return super().writerow({k: safe_cell(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[dict]) -> None:
        for row in rowdicts:
            self.writerow(row)


def csv_writer(fh: TextIO, **kwargs: Any) -> _SafeWriter:
    """The csv.writer of every CSV the studio writes for a crowd (see safe_cell)."""
    return _SafeWriter(fh, **kwargs)


def dict_writer(fh: TextIO, fieldnames: Iterable[str], **kwargs: Any) -> csv.DictWriter:
    """The csv.DictWriter of every CSV the studio writes for a crowd (see safe_cell)."""
    return _SafeDictWriter(fh, fieldnames, **kwargs)
