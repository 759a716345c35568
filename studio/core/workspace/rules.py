"""Accepting candidates in bulk by a rule over their stored metrics (``studio accept``).

A rule is a small expression such as ``distance >= 0.65 and smile_kept and face_found``. It
is read with Python's own parser (``ast.parse``) and then checked against a short list of
node types: comparisons, ``and``/``or``/``not``, the metric names below, numbers, ``True``
and ``False``, and quoted method names. Nothing is ever evaluated by Python: calls,
attributes, subscripts, arithmetic and any other name are refused with the list of names,
so a rule from a shell history or a colleague's note cannot run code.

A metric with no value (no face was found in the surrogate, so there is no distance) makes
a comparison *unknown*; ``and``/``or``/``not`` follow three-valued logic (as SQL's NULL), and
only a rule that is true passes, so ``not distance < 0.6`` does not pass a surrogate
without a face.
"""

from __future__ import annotations

import ast
import difflib
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from studio.core.errors import StudioError
from studio.core.surrogates.registry import REGISTRY

if TYPE_CHECKING:  # this module stays light: `studio accept --help` lists its names
    from studio.core.workspace.store import Candidate, Workspace

#: name -> (kind, what it is). Kinds: number, bool, text.
NAMES: dict[str, tuple[str, str]] = {
    "distance": ("number", "identity distance to the original (0.6: dlib's same-person line)"),
    "arcface_similarity": ("number", "the second recognizer's similarity to the original "
                                     "(at or above its calibrated threshold, in "
                                     "models/recognizer_calibration.json: the same person)"),
    "smile_kept": ("bool", "the surrogate smiles as the original does"),
    "found": ("bool", "a face was found in the surrogate"),
    "face_found": ("bool", "the same as found"),
    "joy": ("number", "the surrogate's joy evidence"),
    "yaw": ("number", "the surrogate's head yaw, degrees"),
    "pitch": ("number", "the surrogate's head pitch, degrees"),
    "roll": ("number", "the surrogate's head roll, degrees"),
    "d_joy": ("number", "joy, surrogate minus original"),
    "d_yaw": ("number", "yaw change, degrees"),
    "d_pitch": ("number", "pitch change, degrees"),
    "d_roll": ("number", "roll change, degrees"),
    "abs_d_joy": ("number", "the size of d_joy"),
    "abs_d_yaw": ("number", "the size of d_yaw"),
    "abs_d_pitch": ("number", "the size of d_pitch"),
    "abs_d_roll": ("number", "the size of d_roll"),
    "abs_d_pose": ("number", "the largest of abs_d_yaw, abs_d_pitch, abs_d_roll"),
    "method": ("text", "how it was made, a method in quotes: "
                       + ", ".join(f'"{k}"' for k in REGISTRY.candidates())),
}
_STORED = ("distance", "arcface_similarity", "joy", "yaw", "pitch", "roll", "d_joy", "d_yaw",
           "d_pitch", "d_roll")
_ORDER = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_SAME = (ast.Eq, ast.NotEq)
MAX_LENGTH = 1000


class RuleError(StudioError):
    """A rule that cannot be read or uses something a rule may not: one line, ``problem``
    (what is wrong with the rule) followed by the names a rule may use."""

    def __init__(self, problem: str) -> None:
        self.problem = problem
        super().__init__(f"{problem} A rule compares these names with numbers (==, !=, <, <=, "
                         f">, >=), joined by and, or, not: {', '.join(NAMES)} (`studio "
                         "accept --help` says what each is).")


def _methods() -> tuple[str, ...]:
    return REGISTRY.candidates()


def names_help() -> str:
    """The names a rule may use and what each is, one a line: for ``--help``."""
    width = max(12, *map(len, NAMES))
    return "\n".join(f"  {name:<{width}} {kind:<6} {text}" for name, (kind, text) in NAMES.items())


def _refuse(problem: str, rule: str) -> RuleError:
    return RuleError(f"the rule {rule!r}: {problem}.")


@dataclass(frozen=True, eq=False)
class Rule:
    """A checked rule; ``passes(candidate)`` is True only when the rule is true for it."""

    text: str
    tree: ast.expr
    names: frozenset[str]

    def passes(self, candidate: Candidate) -> bool:
        return _truth(self.tree, metric_values(candidate)) is True


def parse_rule(text: str) -> Rule:
    """Read and check a rule; a RuleError names the problem and the allowed names."""
    rule = " ".join(str(text).split())
    if not rule:
        raise _refuse("it is empty; for example: distance >= 0.65 and smile_kept", rule)
    if len(rule) > MAX_LENGTH:
        raise _refuse(f"it is longer than {MAX_LENGTH} characters", rule[:40] + "…")
    try:
        tree = ast.parse(rule, mode="eval").body
    except SyntaxError as exc:
        at = f" at column {exc.offset}" if exc.offset else ""
        raise _refuse(f"cannot be read{at} ({exc.msg})", rule) from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise _refuse(f"cannot be read ({type(exc).__name__})", rule) from None
    used: set[str] = set()
    try:
        kind = _kind(tree, rule, used)
    except RecursionError:
        raise _refuse("it is nested too deeply", rule) from None
    if kind != "bool":
        raise _refuse(f"{ast.unparse(tree)!r} is a {kind}, not a test; compare it, "
                      "e.g. distance >= 0.6", rule)
    return Rule(rule, tree, frozenset(used))


def _kind(node: ast.AST, rule: str, used: set[str]) -> str:
    """The kind of value ``node`` gives (number, bool, text), or RuleError for anything a
    rule may not contain."""
    if isinstance(node, ast.BoolOp):
        for value in node.values:
            _want(value, "bool", rule, used)
        return "bool"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        _want(node.operand, "bool", rule, used)
        return "bool"
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        _want(node.operand, "number", rule, used)
        return "number"
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        kinds = [_kind(x, rule, used) for x in operands]
        if len(set(kinds)) > 1:
            raise _refuse(f"{ast.unparse(node)!r} compares a {kinds[0]} with a "
                          f"{next(k for k in kinds if k != kinds[0])}", rule)
        allowed = _ORDER + _SAME if kinds[0] == "number" else _SAME
        for op in node.ops:
            if not isinstance(op, allowed):
                what = "a test of true or false" if kinds[0] == "bool" else "a method name"
                raise _refuse(f"{ast.unparse(node)!r}: {what} takes only == and !=", rule)
        for x in operands:  # a method name must be one the studio makes
            if (isinstance(x, ast.Constant) and isinstance(x.value, str)
                    and x.value not in _methods()):
                raise _refuse(f"there is no method {x.value!r}; the methods are "
                              f"{', '.join(_methods())}", rule)
        return "bool"
    if isinstance(node, ast.Name):
        if node.id not in NAMES:
            close = difflib.get_close_matches(node.id, NAMES, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise _refuse(f"unknown name {node.id!r}{hint}", rule)
        used.add(node.id)
        return NAMES[node.id][0]
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool):
            return "bool"
        if isinstance(node.value, (int, float)):
            return "number"
        if isinstance(node.value, str):
            return "text"
        raise _refuse(f"{node.value!r} is not a number, True/False or a quoted method", rule)
    if isinstance(node, ast.Call):
        raise _refuse(f"calls such as {ast.unparse(node)!r} are not allowed", rule)
    if isinstance(node, ast.Attribute):
        raise _refuse(f"attributes such as {ast.unparse(node)!r} are not allowed", rule)
    if isinstance(node, ast.BinOp):
        raise _refuse(f"arithmetic such as {ast.unparse(node)!r} is not supported "
                      "(abs_d_yaw and the like are the sizes of the changes)", rule)
    raise _refuse(f"{ast.unparse(node)!r} ({type(node).__name__}) is not allowed", rule)


def _want(node: ast.AST, kind: str, rule: str, used: set[str]) -> None:
    got = _kind(node, rule, used)
    if got != kind:
        hint = "; compare it, e.g. distance >= 0.6" if got == "number" else ""
        raise _refuse(f"{ast.unparse(node)!r} is a {got} where a {kind} is needed{hint}", rule)


def metric_values(candidate: Candidate) -> dict[str, object]:
    """The named values a rule reads for one candidate; None where there is no value."""
    m = candidate.metrics
    out: dict[str, object] = {}
    for name in _STORED:
        value = m.get(name)
        out[name] = None if value is None else float(value)
    for axis in ("joy", "yaw", "pitch", "roll"):
        d = out[f"d_{axis}"]
        out[f"abs_d_{axis}"] = None if d is None else abs(d)
    pose = [out[f"abs_d_{a}"] for a in ("yaw", "pitch", "roll")]
    out["abs_d_pose"] = None if None in pose else max(pose)
    out["found"] = out["face_found"] = bool(m.get("found"))
    kept = m.get("smile_kept")
    out["smile_kept"] = None if kept is None else bool(kept)
    out["method"] = candidate.method
    return out


def _value(node: ast.expr, values: dict[str, object]) -> object:
    if isinstance(node, ast.Name):
        return values[node.id]
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _value(node.operand, values)
        return None if v is None else (-v if isinstance(node.op, ast.USub) else +v)
    return _truth(node, values)


_COMPARE = {ast.Lt: lambda a, b: a < b, ast.LtE: lambda a, b: a <= b,
            ast.Gt: lambda a, b: a > b, ast.GtE: lambda a, b: a >= b,
            ast.Eq: lambda a, b: a == b, ast.NotEq: lambda a, b: a != b}


def _truth(node: ast.expr, values: dict[str, object]) -> bool | None:
    """Three-valued: True, False, or None (unknown: a metric without a value)."""
    if isinstance(node, ast.BoolOp):
        results = [_truth(v, values) for v in node.values]
        stop = isinstance(node.op, ast.Or)  # True decides an or, False an and
        if stop in results:
            return stop
        return None if None in results else not stop
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _truth(node.operand, values)
        return None if inner is None else not inner
    if isinstance(node, ast.Compare):
        operands = [_value(x, values) for x in (node.left, *node.comparators)]
        if any(v is None for v in operands):
            return None
        return all(_COMPARE[type(op)](a, b)
                   for op, a, b in zip(node.ops, operands, operands[1:], strict=False))
    value = _value(node, values)  # a bool name or constant
    return None if value is None else bool(value)


@dataclass
class AcceptReport:
    """What ``accept_by_rule`` accepted (or, in a dry run, would accept) and what it left."""

    rule: str
    best_per_face: bool
    override: bool
    dry_run: bool
    accepted: dict[str, list[int]] = field(default_factory=dict)  # method -> candidate ids
    left: Counter = field(default_factory=Counter)  # method -> pending candidates left
    passed: int = 0  # candidates the rule is true for
    not_best: int = 0  # passing and pending, but not the best of their face
    kept_decided: int = 0  # passing but rejected before, left alone (without override)
    already_accepted: int = 0  # passing and accepted before
    faces: int = 0
    faces_none: int = 0  # faces with no accepted candidate once this is done
    unmeasured: int = 0  # candidates whose surrogate showed no face (no metrics)
    bulk: int | None = None  # the step's id in the history (None: dry run or nothing)

    @property
    def count(self) -> int:
        return sum(len(ids) for ids in self.accepted.values())

    def lines(self) -> list[str]:
        """The report as ``studio accept`` prints it."""
        def per_method(counts: dict[str, int]) -> str:
            return ", ".join(f"{m} {n}" for m, n in counts.items() if n) or "none"

        verb = "would accept" if self.dry_run else "accepted"
        best = " (best per face: the highest distance)" if self.best_per_face else ""
        out = [f"rule: {self.rule}{best}",
               f"{verb} {self.count}: "
               f"{per_method({m: len(ids) for m, ids in self.accepted.items()})}",
               f"left undecided {sum(self.left.values())}: {per_method(self.left)}"
               + (f" ({self.not_best} passed but were not the best of their face)"
                  if self.not_best else "")]
        if self.kept_decided:
            out.append(f"left alone {self.kept_decided} passing but rejected before "
                       "(--override accepts them too)")
        if self.already_accepted:
            out.append(f"{self.already_accepted} passing were accepted before")
        if self.unmeasured:
            out.append(f"{self.unmeasured} showed no face in the surrogate: no comparison "
                       "passes them")
        out.append(f"faces: {self.faces_none} of {self.faces} "
                   f"{'would have' if self.dry_run else 'have'} no accepted candidate")
        return out


def _best_first(c: Candidate) -> tuple[float, int]:
    """Highest distance first (none last), then the earlier candidate."""
    d = c.metrics.get("distance")
    return (-(d if d is not None else float("-inf")), c.id)


def accept_by_rule(workspace: Workspace, rule: str | Rule, best_per_face: bool = False,
                   dry_run: bool = False, override: bool = False) -> AcceptReport:
    """Accept the candidates the rule is true for, as one step of the history.

    Only pending candidates are accepted; ``override`` accepts rejected ones too.
    ``best_per_face`` accepts one per face, the passing candidate with the highest distance,
    and none on a face that already has an accepted candidate; the others stay as they
    were. ``dry_run`` writes nothing and reports the same. The candidates are read and
    decided in one write transaction: another command deciding at the same time waits."""
    rule = rule if isinstance(rule, Rule) else parse_rule(rule)
    if dry_run:
        return _accept(workspace, rule, best_per_face, dry_run, override)
    with workspace.deciding():
        return _accept(workspace, rule, best_per_face, dry_run, override)


def _accept(workspace: Workspace, rule: Rule, best_per_face: bool, dry_run: bool,
            override: bool) -> AcceptReport:
    report = AcceptReport(rule.text, best_per_face, override, dry_run)
    by_face: dict[int, list[Candidate]] = {}
    for c in workspace.candidates():
        by_face.setdefault(c.face_id, []).append(c)
    known = _methods()
    methods = list(known) + sorted({c.method for cs in by_face.values() for c in cs} - set(known))
    report.accepted = {m: [] for m in methods}
    report.left = Counter({m: 0 for m in methods})
    chosen: list[int] = []
    for cands in by_face.values():
        passing = [c for c in cands if rule.passes(c)]
        report.passed += len(passing)
        report.unmeasured += sum(not c.metrics.get("found") for c in cands)
        report.already_accepted += sum(c.decision == "accepted" for c in passing)
        report.kept_decided += sum(c.decision == "rejected" and not override for c in passing)
        eligible = [c for c in passing
                    if c.decision == "pending" or (override and c.decision == "rejected")]
        had_one = any(c.decision == "accepted" for c in cands)
        if best_per_face:
            take = [] if had_one else sorted(eligible, key=_best_first)[:1]
            report.not_best += sum(c.decision == "pending" for c in eligible if c not in take)
        else:
            take = eligible
        for c in take:
            report.accepted[c.method].append(c.id)
            chosen.append(c.id)
        taken = {c.id for c in take}
        report.left.update(c.method for c in cands
                           if c.decision == "pending" and c.id not in taken)
        report.faces += 1
        report.faces_none += not (had_one or take)
    if not dry_run and chosen:
        what = f"accept: {rule.text}" + (" (best per face)" if best_per_face else "")
        report.bulk = workspace.decide_many(chosen, "accepted", what)
    return report


# -- the curation window's filters: named rules --------------------------------------------
#: A candidate this close to the 0.6 threshold is flagged for a second look.
IDENTITY_MARGIN = 0.65
POSE_OFF_DEG = 10.0


def _identity_too_close(c: Candidate) -> bool:
    d = c.metrics.get("distance")
    return d is None or d < IDENTITY_MARGIN


def _expression_off(c: Candidate) -> bool:
    m = c.metrics
    return (not m.get("found") or m.get("smile_kept") is False
            or max(abs(m.get(k, 0.0)) for k in ("d_yaw", "d_pitch", "d_roll")) > POSE_OFF_DEG)


#: The curation view's filters by name, each a test of one candidate (the window lists
#: the names in this order); unlike ``--rule``, a missing metric flags a candidate.
FILTERS: dict[str, Callable[[Candidate], bool]] = {
    "all": lambda c: True,
    "pending": lambda c: c.decision == "pending",
    "rejected": lambda c: c.decision == "rejected",
    "identity too close": _identity_too_close,
    "expression off": _expression_off,
}


def needs_attention(candidate: Candidate, kind: str) -> bool:
    """Whether the curation view's filter ``kind`` shows ``candidate``."""
    return FILTERS[kind](candidate)
