"""Crowd smile labels from MTurk or Label Studio, joined to the private mapping and analysed.

Workers only ever see random item ids; the mapping CSV (kept private) says which original face
and which version (original, GAN or 3D surrogate) each id is. The analysis follows the thesis:
average and majority-vote accuracy per version, consensus levels, paired t-tests on per-image
correct counts, accuracy against the number of workers sampled, and accuracy against the
original's joy evidence. Malformed input is counted and described, never fatal: a crowd batch
is expensive, and one garbled row must not hide the rest.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from scipy import stats

from studio.core.errors import StudioError

VERSIONS = ("original", "gan", "3d")
KINDS = ("item", "gold", "repeat")
CONSENSUS_LEVELS = (0.5, 0.75, 0.90)  # 0.5: every image (a majority always has >= half)
JOY_CLIP = 1e-3  # joy is clipped to [0.001, 0.999] before the logit, so evidence is finite
BIN_WIDTH = 0.5  # evidence bins, in logit units
MAPPING_COLUMNS = ("item_id", "original_key", "version", "seed", "kind", "gold_label", "joy")

_SMILE = {"smile", "smiling", "yes", "y", "1", "true", "t"}
_NO_SMILE = {"no smile", "nosmile", "non smile", "not smiling", "not smile", "no", "n", "0",
             "false", "f"}
_ITEM_FILE = re.compile(r"^([0-9A-Za-z_-]+)\.png$", re.IGNORECASE)


class CrowdInputError(StudioError):
    """A file the crowd report needs is missing or has none of the expected columns."""


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


def item_from_url(url: str) -> str | None:
    """The item id of an image URL ending in <item_id>.png (query string and fragment ignored)."""
    path = unquote(urlsplit(url.strip()).path)
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


def _read_csv_text(path: Path) -> str:
    if not path.is_file():
        raise CrowdInputError(f"{path}: no such file")
    # utf-8-sig: spreadsheet exports start with a byte-order mark; undecodable bytes are kept
    # visible as U+FFFD so the row that holds them is reported, not the whole file.
    return path.read_text(encoding="utf-8-sig", errors="replace")


def _dict_rows(path: Path, required: Iterable[str]) -> tuple[list[tuple[int, dict]], list[str]]:
    reader = csv.DictReader(io.StringIO(_read_csv_text(path)))
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in required if c not in header]
    if missing:
        raise CrowdInputError(f"{path}: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    rows, problems = [], []
    for row in reader:
        where = f"{path.name} line {reader.line_num}"
        if None in row or any(v is None for v in row.values()):
            problems.append(f"{where}: wrong number of fields")
            continue
        rows.append((reader.line_num, {k: v.strip() for k, v in row.items()}))
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
        elif item in mapping:
            reasons.append(f"duplicate item_id {item}")
        if not r["original_key"]:
            reasons.append("empty original_key")
        if version not in VERSIONS:
            reasons.append(f"unknown version {r['version']!r}")
        if kind not in KINDS:
            reasons.append(f"unknown kind {r['kind']!r}")
        gold = parse_label(r["gold_label"]) if r["gold_label"] else None
        if r["gold_label"] and gold is None:
            reasons.append(f"unknown gold_label {r['gold_label']!r}")
        try:
            seed = int(r["seed"]) if r["seed"] else None
        except ValueError:
            reasons.append(f"seed {r['seed']!r} is not an integer")
        try:
            joy = float(r["joy"]) if r["joy"] else None
            if joy is not None and not 0 <= joy <= 1:
                raise ValueError
        except ValueError:
            reasons.append(f"joy {r['joy']!r} is not in [0, 1]")
        if reasons:
            problems.append(f"{where}: {'; '.join(reasons)}")
            continue
        mapping[item] = MappingRow(item, r["original_key"], version, seed, kind, gold, joy)
    return mapping, problems


def read_truth(path: Path) -> tuple[dict[str, bool], list[str]]:
    """original_key -> smiling, from label smile/no_smile (or 1/0, yes/no, true/false)."""
    rows, problems = _dict_rows(Path(path), ("original_key", "label"))
    truth: dict[str, bool] = {}
    for line, r in rows:
        label = parse_label(r["label"])
        if not r["original_key"] or label is None:
            problems.append(f"{Path(path).name} line {line}: unusable truth row "
                            f"({r['original_key']!r}, {r['label']!r})")
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
            self.problems.append(f"{answer.where}: unknown item id {answer.item_id!r}")
        elif (answer.worker, answer.item_id) in self._seen:
            self.problems.append(f"{answer.where}: worker {answer.worker!r} answered item "
                                 f"{answer.item_id} again; the first answer is kept")
        else:
            self._seen.add((answer.worker, answer.item_id))
            self.answers.append(answer)


def read_results(path: Path, known_items: Collection[str] | None = None) -> ParsedResults:
    """An MTurk batch-results CSV or a Label Studio JSON export, told apart by content.

    Items missing from known_items (the mapping) are reported, not kept.
    """
    path = Path(path)
    text = _read_csv_text(path)
    if text.lstrip()[:1] in ("[", "{") or (path.suffix.lower() == ".json" and text.strip()):
        return _read_label_studio(text, str(path), known_items)
    return _read_mturk(text, str(path), known_items)


def _task_answer(raw: str) -> bool:
    """The smile choice in MTurk crowd-form JSON (Answer.taskAnswers); ValueError says why not."""
    try:
        data = json.loads(raw)
    except ValueError:
        raise ValueError("Answer.taskAnswers is not valid JSON") from None
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
        raise ValueError(f"Answer.taskAnswers has no 'smile' field (fields: {sorted(data)})")
    if isinstance(value, dict) and "label" in value:
        value = value["label"]
    elif isinstance(value, dict):  # {"smile": true, "no_smile": false}: radio buttons
        chosen = [k for k, v in value.items() if v is True or str(v).lower() in ("true", "on")]
        if len(chosen) != 1:
            raise ValueError(f"Answer.taskAnswers selects {len(chosen)} choices, expected 1")
        value = chosen[0]
    label = parse_label(value)
    if label is None:
        raise ValueError(f"unrecognised answer {value!r} in Answer.taskAnswers")
    return label


def _mturk_answer(row: dict[str, str]) -> bool:
    direct = row.get("Answer.smile", "")
    if direct:
        label = parse_label(direct)
        if label is None:
            raise ValueError(f"unrecognised answer {direct!r}")
        return label
    if row.get("Answer.taskAnswers", ""):
        return _task_answer(row["Answer.taskAnswers"])
    # Classic radio-button forms: one boolean column per choice, Answer.smile.<choice>.
    chosen = [k.removeprefix("Answer.smile.") for k, v in row.items()
              if k.startswith("Answer.smile.") and v.strip().lower() in ("true", "on", "1")]
    if len(chosen) == 1 and parse_label(chosen[0]) is not None:
        return bool(parse_label(chosen[0]))
    raise ValueError("empty answer")


def _read_mturk(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, "mturk")
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip() for h in next(reader)]
    except (StopIteration, csv.Error):
        out.problems.append("the file is empty or not CSV")
        return out
    missing = [c for c in ("WorkerId", "Input.image_url") if c not in header]
    if not any(c == "Answer.smile" or c == "Answer.taskAnswers" or c.startswith("Answer.smile.")
               for c in header):
        missing.append("Answer.smile or Answer.taskAnswers")
    if missing:
        out.problems.append(f"not an MTurk batch file we can read: missing {', '.join(missing)}")
        return out
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            out.n_records += 1
            out.problems.append(f"line {reader.line_num}: unreadable CSV ({exc})")
            continue
        if not any(f.strip() for f in fields):
            continue  # blank line
        out.n_records += 1
        where = f"line {reader.line_num}"
        if len(fields) != len(header):
            out.problems.append(f"{where}: {len(fields)} fields, the header has {len(header)}")
            continue
        row = dict(zip(header, fields, strict=True))
        if row.get("AssignmentStatus", "").strip().lower() == "rejected":
            out.skipped["rejected assignment"] += 1
            continue
        worker = row["WorkerId"].strip()
        item = item_from_url(row["Input.image_url"])
        try:
            if not worker:
                raise ValueError("empty WorkerId")
            if item is None:
                raise ValueError(f"image URL {row['Input.image_url'][:80]!r} does not end in "
                                 "<item_id>.png")
            smile = _mturk_answer(row)
        except ValueError as exc:
            out.problems.append(f"{where}: {exc}")
            continue
        out.add(Answer(worker, item, smile, where), known)
    if not out.n_records:
        out.problems.append("the file holds no assignment rows")
    return out


def _ls_worker(completed_by: Any) -> str | None:
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("id", completed_by.get("email"))
    if isinstance(completed_by, bool) or completed_by in (None, ""):
        return None
    return str(completed_by)


def _ls_choice(result: Any) -> bool:
    if not isinstance(result, list):
        raise ValueError("result is not a list")
    choices = [r for r in result if isinstance(r, dict) and r.get("type") == "choices"]
    named = [r for r in choices if r.get("from_name") == "smile"]
    picked = named or choices
    if len(picked) != 1:
        raise ValueError(f"{len(picked)} smile choice results, expected 1")
    values = (picked[0].get("value") or {}).get("choices")
    if not isinstance(values, list) or len(values) != 1:
        raise ValueError(f"choices {values!r}, expected exactly one")
    label = parse_label(values[0])
    if label is None:
        raise ValueError(f"unrecognised choice {values[0]!r}")
    return label


def _read_label_studio(text: str, source: str, known: Collection[str] | None) -> ParsedResults:
    out = ParsedResults(source, "label-studio")
    try:
        tasks = json.loads(text)
    except ValueError as exc:
        out.problems.append(f"not valid JSON ({exc})")
        return out
    if isinstance(tasks, dict):
        tasks = [tasks]
    if not isinstance(tasks, list) or not tasks:
        out.problems.append("the JSON is not a list of Label Studio tasks")
        return out
    for i, task in enumerate(tasks):
        if not isinstance(task, dict):
            out.problems.append(f"task #{i + 1}: not an object")
            continue
        where = f"task {task.get('id', f'#{i + 1}')}"
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
            out.problems.append(f"{where}: annotations is not a list")
            continue
        for j, ann in enumerate(annotations):
            out.n_records += 1
            a_where = f"{where} annotation {j + 1}"
            if isinstance(ann, dict) and ann.get("was_cancelled"):
                out.skipped["cancelled annotation"] += 1
                continue
            try:
                if not isinstance(ann, dict):
                    raise ValueError("not an object")
                if not item:
                    raise ValueError("no data.item_id and no image URL ending in <item_id>.png")
                worker = _ls_worker(ann.get("completed_by"))
                if worker is None:
                    raise ValueError("no completed_by")
                smile = _ls_choice(ann.get("result"))
            except ValueError as exc:
                out.problems.append(f"{a_where}: {exc}")
                continue
            out.add(Answer(worker, item.strip(), smile, a_where), known)
    return out


# --- analysis ---------------------------------------------------------------------------------


@dataclass
class ImageResult:
    """One version of one original face: its answers, correct count and joy evidence."""

    original_key: str
    version: str
    truth: bool
    n_answers: int
    n_smile: int
    n_correct: int
    joy: float | None
    evidence: float | None  # logit of the original's joy
    votes: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0, bool))  # correct?

    @property
    def accuracy(self) -> float:
        return self.n_correct / self.n_answers

    @property
    def majority_correct(self) -> float:
        """1 if the majority label is right, 0 if wrong, 0.5 for a tie (a fair coin's share)."""
        return majority_score(self.n_correct, self.n_answers)

    @property
    def consensus(self) -> float:
        """Share of answers that agree with the majority label."""
        return max(self.n_smile, self.n_answers - self.n_smile) / self.n_answers


def majority_score(n_correct: np.ndarray | int, n: np.ndarray | int) -> np.ndarray | float:
    """Majority-vote correctness from correct counts; ties score 0.5 (a fair coin)."""
    twice = 2 * np.asarray(n_correct)
    score = np.where(twice > n, 1.0, np.where(twice == n, 0.5, 0.0))
    return score if score.ndim else float(score)


@dataclass
class VersionAccuracy:
    version: str
    n_images: int
    n_answers: int
    n_correct: int
    accuracy: float  # all correct answers / all answers
    ci_low: float  # 95% CI clustered by image (answers on one image are not independent)
    ci_high: float


@dataclass
class ConsensusResult:
    version: str
    level: float  # consensus >= level; 0.5 means every image
    n_images: int
    n_reached: int
    majority_accuracy: float  # over the images that reach the level (nan if none)


@dataclass
class PairedTest:
    a: str
    b: str
    n: int  # originals shown in both versions
    mean_difference: float  # mean of correct(a) - correct(b) per image
    sd_difference: float
    t: float
    p: float


@dataclass
class WorkerCurve:
    version: str
    k: list[int]
    accuracy: list[float]  # majority-vote accuracy with k workers sampled per image


@dataclass
class JoyBin:
    version: str
    low: float
    high: float
    n_images: int
    mean_accuracy: float


@dataclass
class WorkerQuality:
    worker: str
    n_answers: int
    n_items: int  # study items with a known truth
    item_accuracy: float
    n_gold: int
    gold_correct: int
    gold_accuracy: float
    n_repeat_pairs: int
    n_consistent: int
    consistency: float  # share of repeated pairs answered the same


@dataclass
class CrowdAnalysis:
    """Everything the report shows; to_dict() is summary.json."""

    source: str
    format: str
    n_records: int
    n_answers: int
    skipped: dict[str, int]
    problems: list[str]
    versions: list[VersionAccuracy]
    consensus: list[ConsensusResult]
    tests: list[PairedTest]
    curves: list[WorkerCurve]
    joy_bins: list[JoyBin]
    images: list[ImageResult]
    workers: list[WorkerQuality]
    low_gold_workers: list[str]
    n_images_without_joy: int
    seed: int
    draws: int

    def version(self, name: str) -> VersionAccuracy | None:
        return next((v for v in self.versions if v.version == name), None)

    def to_dict(self) -> dict:
        images = [{"original_key": i.original_key, "version": i.version,
                   "truth": "smile" if i.truth else "no_smile", "n_answers": i.n_answers,
                   "n_smile": i.n_smile, "n_correct": i.n_correct, "accuracy": i.accuracy,
                   "majority_correct": i.majority_correct, "consensus": i.consensus,
                   "joy": i.joy, "evidence": i.evidence} for i in self.images]
        out = {k: getattr(self, k) for k in ("source", "format", "n_records", "n_answers",
                                             "skipped", "problems", "low_gold_workers",
                                             "n_images_without_joy", "seed", "draws")}
        out["n_problems"] = len(self.problems)
        out["joy_evidence"] = (f"logit of the original's joy, log(joy / (1 - joy)), joy clipped "
                               f"to [{JOY_CLIP}, {1 - JOY_CLIP}]; bins {BIN_WIDTH} wide")
        out["majority_ties"] = "a tie scores 0.5 (a fair coin's expected accuracy)"
        for name in ("versions", "consensus", "tests", "curves", "joy_bins", "workers"):
            out[name] = [asdict(x) for x in getattr(self, name)]
        out["images"] = images
        return _clean(out)


def _clean(value: Any) -> Any:
    """JSON-safe: nan and inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def evidence_of(joy: float | None) -> float | None:
    """Joy evidence: the logit of joy, so that equal steps mean equal changes in the odds."""
    if joy is None:
        return None
    j = min(max(joy, JOY_CLIP), 1 - JOY_CLIP)
    return math.log(j / (1 - j))


def clustered_ci(n_correct: np.ndarray, n_answers: np.ndarray, level: float = 0.95
                 ) -> tuple[float, float]:
    """CI of a pooled accuracy whose answers cluster by image (ratio estimator, t with m-1 df).

    With the same number of answers per image this is the t-interval of per-image accuracies.
    """
    m = len(n_answers)
    if m < 2:
        return float("nan"), float("nan")
    acc = n_correct.sum() / n_answers.sum()
    resid = n_correct - acc * n_answers
    se = math.sqrt(m / (m - 1) * float((resid**2).sum())) / n_answers.sum()
    half = stats.t.ppf(0.5 + level / 2, m - 1) * se
    return max(0.0, acc - half), min(1.0, acc + half)


def paired_test(a: str, b: str, diffs: np.ndarray) -> PairedTest:
    """scipy's one-sample t-test against 0, with zero variance decided deterministically.

    All differences equal: t = 0, p = 1 when they are 0, else t = +-inf, p = 0 (the limit),
    where scipy would warn and return nan.
    """
    n = len(diffs)
    mean = float(diffs.mean()) if n else float("nan")
    sd = float(diffs.std(ddof=1)) if n > 1 else float("nan")
    if n < 2:
        t = p = float("nan")
    elif np.all(diffs == diffs[0]):
        t, p = (0.0, 1.0) if diffs[0] == 0 else (math.copysign(math.inf, mean), 0.0)
    else:
        res = stats.ttest_1samp(diffs, 0.0)
        t, p = float(res.statistic), float(res.pvalue)
    return PairedTest(a, b, n, mean, sd, t, p)


def sampled_majority_curve(votes: list[np.ndarray], draws: int, rng: np.random.Generator
                           ) -> tuple[np.ndarray, np.ndarray]:
    """Majority-vote accuracy with k = 1..max answers sampled per image, mean of draws.

    Each draw shuffles every image's answers once; the first k of a shuffle are a uniform
    sample of k, so prefix sums give every k at once. Images with fewer than k answers use
    all of theirs, so the curve ends at the full-crowd majority accuracy.
    """
    n = np.array([len(v) for v in votes])
    width = int(n.max())
    padded = np.zeros((len(votes), width))
    for i, v in enumerate(votes):
        padded[i, : len(v)] = v
    keys = rng.random((draws, len(votes), width))
    keys[:, np.arange(width)[None, :] >= n[:, None]] = np.inf  # padding sorts last
    order = np.argsort(keys, axis=2)
    shuffled = np.take_along_axis(np.broadcast_to(padded, keys.shape), order, axis=2)
    correct = np.cumsum(shuffled, axis=2)  # (draws, images, k)
    k = np.arange(1, width + 1)
    used = np.minimum(k[None, :], n[:, None])  # (images, k)
    correct = np.take_along_axis(correct, np.broadcast_to(used - 1, correct.shape), axis=2)
    score = majority_score(correct, used[None])
    return k, score.mean(axis=(0, 1))


def analyze(parsed: ParsedResults, mapping: dict[str, MappingRow], truth: dict[str, bool],
            seed: int = 0, draws: int = 10, extra_problems: Iterable[str] = ()) -> CrowdAnalysis:
    """The thesis's analysis of one crowd batch: see the module docstring."""
    problems = [*extra_problems, *parsed.problems]
    by_worker: dict[str, dict[str, bool]] = defaultdict(dict)
    for ans in parsed.answers:
        if ans.item_id in mapping:
            by_worker[ans.worker][ans.item_id] = ans.smile
        else:  # only when read_results was not given the mapping's ids
            problems.append(f"{ans.where}: unknown item id {ans.item_id!r}")

    joy_of: dict[str, float] = {}
    for row in sorted(mapping.values(), key=lambda r: r.version != "original"):
        if row.joy is not None:
            joy_of.setdefault(row.original_key, row.joy)

    # Each repeat points at the first item/gold shown with the same original, version and seed.
    primary: dict[tuple, str] = {}
    for row in mapping.values():
        if row.kind != "repeat":
            primary.setdefault((row.original_key, row.version, row.seed), row.item_id)
    repeat_of: dict[str, str] = {}
    for row in mapping.values():
        if row.kind == "repeat":
            key = (row.original_key, row.version, row.seed)
            if key in primary:
                repeat_of[row.item_id] = primary[key]
            else:
                problems.append(f"mapping: repeat item {row.item_id} has no first showing")

    votes: dict[tuple[str, str], list[tuple[bool, bool]]] = defaultdict(list)  # (smile, correct)
    no_truth: set[str] = set()
    workers: list[WorkerQuality] = []
    for worker, answers in sorted(by_worker.items()):
        items = gold_n = gold_c = pairs = same = item_c = 0
        for item_id, smile in answers.items():
            row = mapping[item_id]
            if row.kind == "repeat":
                first = repeat_of.get(item_id)
                if first is not None and first in answers:
                    pairs += 1
                    same += answers[first] == smile
                continue
            label = truth.get(row.original_key)
            if row.kind == "gold":
                label = row.gold_label if row.gold_label is not None else label
                if label is None:
                    no_truth.add(f"gold item {item_id}")
                    continue
                gold_n += 1
                gold_c += smile == label
                continue
            if label is None:
                no_truth.add(f"original {row.original_key}")
                continue
            items += 1
            item_c += smile == label
            votes[(row.original_key, row.version)].append((smile, smile == label))
        workers.append(WorkerQuality(
            worker, len(answers), items, item_c / items if items else float("nan"), gold_n,
            gold_c, gold_c / gold_n if gold_n else float("nan"), pairs, same,
            same / pairs if pairs else float("nan")))
    problems += [f"no truth label for {what}; its answers are left out" for what in
                 sorted(no_truth)]

    images = []
    order = {v: i for i, v in enumerate(VERSIONS)}
    for (key, version), vs in sorted(votes.items(), key=lambda kv: (kv[0][0], order[kv[0][1]])):
        arr = np.array(vs, dtype=bool)
        joy = joy_of.get(key)
        images.append(ImageResult(key, version, truth[key], len(arr), int(arr[:, 0].sum()),
                                  int(arr[:, 1].sum()), joy, evidence_of(joy), arr[:, 1]))

    present = [v for v in VERSIONS if any(i.version == v for i in images)]
    versions, consensus, curves, bins = [], [], [], []
    for vi, version in enumerate(present):
        imgs = [i for i in images if i.version == version]
        c = np.array([i.n_correct for i in imgs])
        n = np.array([i.n_answers for i in imgs])
        versions.append(VersionAccuracy(version, len(imgs), int(n.sum()), int(c.sum()),
                                        float(c.sum() / n.sum()), *clustered_ci(c, n)))
        for level in CONSENSUS_LEVELS:
            reached = [i for i in imgs if i.consensus >= level]
            acc = float(np.mean([i.majority_correct for i in reached])) if reached \
                else float("nan")
            consensus.append(ConsensusResult(version, level, len(imgs), len(reached), acc))
        rng = np.random.default_rng([seed, vi])
        k, acc = sampled_majority_curve([i.votes for i in imgs], draws, rng)
        curves.append(WorkerCurve(version, k.tolist(), acc.tolist()))
        bins += _joy_bins(version, imgs)

    tests = []
    correct = {(i.original_key, i.version): i.n_correct for i in images}
    for a, b in itertools.combinations(present, 2):
        keys = sorted({k for k, v in correct if v == a} & {k for k, v in correct if v == b})
        diffs = np.array([correct[(k, a)] - correct[(k, b)] for k in keys], dtype=float)
        tests.append(paired_test(a, b, diffs))

    low = [w.worker for w in workers if w.n_gold and w.gold_accuracy < 0.5]
    return CrowdAnalysis(parsed.source, parsed.format, parsed.n_records, len(parsed.answers),
                         dict(parsed.skipped), problems, versions, consensus, tests, curves,
                         bins, images, workers, low,
                         sum(i.evidence is None for i in images), seed, draws)


def _joy_bins(version: str, images: list[ImageResult]) -> list[JoyBin]:
    groups: dict[float, list[float]] = defaultdict(list)
    for img in images:
        if img.evidence is not None:
            groups[math.floor(img.evidence / BIN_WIDTH) * BIN_WIDTH].append(img.accuracy)
    return [JoyBin(version, low, low + BIN_WIDTH, len(accs), float(np.mean(accs)))
            for low, accs in sorted(groups.items())]


def load_and_analyze(results: Path, mapping: Path, truth: Path, seed: int = 0,
                     draws: int = 10) -> CrowdAnalysis:
    """Read the three files and analyse; problems in any of them end up in the report."""
    mapping_rows, mapping_problems = read_mapping(Path(mapping))
    truth_labels, truth_problems = read_truth(Path(truth))
    parsed = read_results(Path(results), known_items=mapping_rows)
    return analyze(parsed, mapping_rows, truth_labels, seed=seed, draws=draws,
                   extra_problems=[*mapping_problems, *truth_problems])
