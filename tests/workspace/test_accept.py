"""`studio accept`: bulk accepts by a rule over stored metrics, on real faces, undone as one."""

from __future__ import annotations

import builtins
import hashlib
import shutil
import sqlite3
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from studio.cli import main
from studio.core.surrogates.registry import REGISTRY
from studio.core.workspace.rules import RuleError, accept_by_rule, parse_rule
from studio.core.workspace.store import Workspace

# -- the rule language (no data needed) ---------------------------------------------------


@pytest.mark.parametrize(("rule", "names"), [
    ("distance >= 0.6", {"distance"}),
    ("distance >= 0.65 and smile_kept and face_found", {"distance", "smile_kept",
                                                        "face_found"}),
    ("abs_d_yaw <= 5", {"abs_d_yaw"}),
    ('method == "context"', {"method"}),
    ("-5 <= d_yaw <= 5 and not (abs_d_pose > 10 or smile_kept == False)",
     {"d_yaw", "abs_d_pose", "smile_kept"}),
    ("  distance\n >= 0.6  ", {"distance"}),  # spaces and line breaks as typed in a shell
])
def test_valid_rules_are_read(rule, names):
    parsed = parse_rule(rule)
    assert parsed.names == names and "\n" not in parsed.text


BAD_RULES = [
    ("__import__('os').system('touch pwned')", "calls such as"),
    ("__import__('os')", "calls such as"),
    ("open('/etc/passwd')", "calls such as"),
    ("distance.real >= 0", "attributes such as"),
    ("().__class__.__bases__", "attributes such as"),
    ("distnce >= 0.6", "unknown name 'distnce' (did you mean distance?)"),
    ("os >= 1", "unknown name 'os'"),
    ("distance >= ", "cannot be read"),
    ("distance = 0.6", "cannot be read"),
    ("distance >= 0.6 && smile_kept", "cannot be read"),
    ("", "it is empty"),
    ("distance", "'distance' is a number, not a test"),
    ("smile_kept and distance", "'distance' is a number where a bool is needed"),
    ("smile_kept >= 1", "compares a bool with a number"),
    ("smile_kept < True", "takes only == and !="),
    ('method == "contex"', "there is no method 'contex'"),
    ('method > "gan"', "takes only == and !="),
    ("distance - 0.1 > 0.5", "arithmetic"),
    ("[d for d in distance]", "ListComp"),
    ("(x := 1) > 0", "NamedExpr"),
    ("lambda: 1", "Lambda"),
    ("distance >= 0.6 if smile_kept else True", "IfExp"),
    ("distance[0] > 1", "Subscript"),
    ("distance >= b'0'", "is not a number"),
    ("(" * 300 + "smile_kept" + ")" * 300, "cannot be read"),
    ("smile_kept or " * 400 + "smile_kept", "longer than"),
]


@pytest.mark.parametrize(("rule", "problem"), BAD_RULES)
def test_bad_rules_say_the_problem_and_the_names(rule, problem, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RuleError) as caught:
        parse_rule(rule)
    message = str(caught.value)
    assert problem in message and problem in caught.value.problem
    assert "\n" not in message  # one line: the problem, then the names in one list
    names = message.split("joined by and, or, not: ")[1]
    for name in ("distance", "smile_kept", "face_found", "abs_d_yaw", "method"):
        assert f"{name}," in names or f"{name} (" in names
    assert not (tmp_path / "pwned").exists()


def test_rules_never_reach_eval_exec_or_compiled_code(monkeypatch):
    """Python's parser is used for its syntax tree only: no eval, no exec, and compile is
    only ever asked for an AST, never for code that could run."""
    from types import SimpleNamespace

    real_compile = builtins.compile
    asked = []

    def ast_only(source, filename, mode, flags=0, *args, **kwargs):
        import ast

        assert flags & ast.PyCF_ONLY_AST, "a rule was compiled to code"
        asked.append(source)
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    def refuse(*_args, **_kwargs):
        raise AssertionError("eval/exec was called")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    monkeypatch.setattr(builtins, "compile", ast_only)
    rule = parse_rule("distance >= 0.65 and smile_kept and abs_d_yaw <= 5")
    metrics = {"found": True, "distance": 0.7, "smile_kept": True, "d_yaw": -3.0}
    candidate = SimpleNamespace(metrics=metrics, method="gan")
    assert rule.passes(candidate)
    assert not rule.passes(SimpleNamespace(metrics={**metrics, "d_yaw": 7.5}, method="gan"))
    assert asked == ["distance >= 0.65 and smile_kept and abs_d_yaw <= 5"]


# -- on a real workspace ------------------------------------------------------------------

@pytest.fixture(scope="module")
def batch_file(batched) -> Path:
    """What `studio batch` writes for three real GENKI-4K faces: two candidates of each
    method (GAN, 3D, in context by default and strict) per face. Made once; tests work on
    copies."""
    path, report = batched("accept", 3, 2, REGISTRY.candidates())
    assert report.faces == 3 and report.candidates == 3 * 2 * len(REGISTRY.candidates()) == 24
    return path


@pytest.fixture
def ws_path(batch_file, tmp_path) -> Path:
    path = tmp_path / "w.studio"
    shutil.copy(batch_file, path)
    return path


def _decisions(path: Path) -> dict[int, str]:
    with Workspace(path) as ws:
        return {c.id: c.decision for c in ws.candidates()}


def _median_distance(ws: Workspace) -> float:
    """A threshold that splits these candidates, whatever their distances are."""
    return round(statistics.median(c.distance for c in ws.candidates()), 4)


@pytest.mark.data
def test_rule_accepts_exactly_the_passing_candidates(ws_path):
    with Workspace(ws_path) as ws:
        cands = ws.candidates()
        t = _median_distance(ws)
        expected = {c.id for c in cands if c.distance >= t}
        assert 0 < len(expected) < len(cands)  # the rule splits them
        report = accept_by_rule(ws, f"distance >= {t}")
        after = {c.id: c for c in ws.candidates()}
        assert {i for i, c in after.items() if c.decision == "accepted"} == expected
        assert report.count == len(expected) == report.passed
        for method, ids in report.accepted.items():
            assert sorted(ids) == sorted(i for i in expected if after[i].method == method)
        assert sum(report.left.values()) == len(cands) - len(expected)
        faces_with = {after[i].face_id for i in expected}
        assert report.faces == 3 and report.faces_none == 3 - len(faces_with)
        # The rule of the issue reads alike, with the names and a method test.
        rule = "distance >= 0.65 and smile_kept and face_found and method != \"gan\""
        more = accept_by_rule(ws, rule, dry_run=True)
        oracle = {c.id for c in after.values() if c.decision == "pending" and c.distance >= 0.65
                  and c.metrics["smile_kept"] and c.method != "gan"}
        assert {i for ids in more.accepted.values() for i in ids} == oracle
        assert more.accepted["gan"] == [] and more.already_accepted == sum(
            1 for i in expected if after[i].method != "gan" and after[i].distance >= 0.65
            and after[i].metrics["smile_kept"])
        low = accept_by_rule(ws, "abs_d_yaw <= 5", dry_run=True)
        assert low.passed == sum(abs(c.metrics["d_yaw"]) <= 5 for c in cands)


@pytest.mark.data
def test_best_per_face_accepts_the_farthest_one_and_leaves_the_rest(ws_path):
    with Workspace(ws_path) as ws:
        cands = ws.candidates()
        t = min(c.distance for c in cands)  # every candidate passes
        report = accept_by_rule(ws, f"distance >= {t} and face_found", best_per_face=True)
        after = ws.candidates()
        accepted = [c for c in after if c.decision == "accepted"]
        assert report.count == len(accepted) == 3  # one per face
        for c in accepted:
            rivals = [x for x in after if x.face_id == c.face_id]
            assert c.distance == max(x.distance for x in rivals)
        assert sum(c.decision == "pending" for c in after) == len(cands) - 3
        assert report.not_best == len(cands) - 3 and report.faces_none == 0
        # A face that has its accepted candidate gets no other on a second pass.
        again = accept_by_rule(ws, "distance >= 0", best_per_face=True)
        assert again.count == 0 and again.bulk is None
        assert "best per face: the highest distance" in report.lines()[0]


@pytest.mark.data
def test_dry_run_writes_nothing(ws_path, capsys):
    with Workspace(ws_path) as ws:  # opened once, as any use of the file does
        t = _median_distance(ws)
    decisions = _decisions(ws_path)
    before = hashlib.sha256(ws_path.read_bytes()).hexdigest()
    assert main(["accept", str(ws_path), "--rule", f"distance >= {t}", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert hashlib.sha256(ws_path.read_bytes()).hexdigest() == before
    assert _decisions(ws_path) == decisions
    assert not Path(f"{ws_path}-wal").exists() or Path(f"{ws_path}-wal").stat().st_size == 0
    n = sum(d >= t for d in _distances(ws_path))
    assert f"would accept {n}: " in out and "dry run: nothing was written" in out
    assert main(["accept", str(ws_path), "--rule", f"distance >= {t}"]) == 0
    assert f"accepted {n}: " in capsys.readouterr().out
    assert sum(d == "accepted" for d in _decisions(ws_path).values()) == n


def _distances(path: Path) -> list[float]:
    with Workspace(path) as ws:
        return [c.distance for c in ws.candidates()]


@pytest.mark.data
def test_undo_reverts_the_whole_group_and_only_it(ws_path, capsys):
    with Workspace(ws_path) as ws:
        cands = ws.candidates()
        rejected = cands[0]
        ws.decide(rejected.id, "rejected")  # a decision of its own, before the group
        report = accept_by_rule(ws, "distance >= 0")
        assert report.count == len(cands) - 1 and report.kept_decided == 1
        assert ws.candidates(decision="rejected")[0].id == rejected.id
        step = ws.last_step()
        assert step.bulk == report.bulk and len(step.candidate_ids) == len(cands) - 1
        assert step.what == "accept: distance >= 0"
    assert main(["accept", str(ws_path), "--undo"]) == 0
    assert f"undone: accept: distance >= 0 ({len(cands) - 1} candidates" in \
        capsys.readouterr().out
    after = _decisions(ws_path)
    assert after[rejected.id] == "rejected"
    assert all(d == "pending" for i, d in after.items() if i != rejected.id)
    # --override accepts the rejected one too; undo gives it back its rejection.
    with Workspace(ws_path) as ws:
        report = accept_by_rule(ws, "distance >= 0", override=True)
        assert report.count == len(cands)
        ws.decide(cands[1].id, "rejected")  # a single decision after the group
    assert main(["accept", str(ws_path), "--undo"]) == 2  # the last step is not a group
    err = capsys.readouterr().err
    assert "single decision" in err and "Nothing was changed" in err
    assert _decisions(ws_path)[cands[1].id] == "rejected"
    with Workspace(ws_path) as ws:
        assert ws.undo() == cands[1].id  # the window's Ctrl+Z: the single decision
        step = ws.undo_step()  # then the group, whole
        assert step.bulk is not None and len(step.candidate_ids) == len(cands)
        assert {c.id: c.decision for c in ws.candidates()} == after
        assert ws.undo() == rejected.id and ws.undo() is None
        assert ws.db.execute("SELECT COUNT(*) FROM bulk_ops").fetchone()[0] == 0


@pytest.mark.data
def test_a_surrogate_without_a_face_never_passes_a_comparison(ws_path, engine):
    """A real measurement of a face-less image: no distance, no smile."""
    from studio.core.metrics.comparison import compare
    from studio.core.surrogates.making import candidate_metrics, png_bytes
    from studio.core.workspace.store import face_analysis

    blank = np.full((256, 256, 3), 128, np.uint8)
    with Workspace(ws_path) as ws:
        face = ws.faces()[0]
        metrics = candidate_metrics(face_analysis(face),
                                    compare(engine.analyzer, face_analysis(face), blank))
        assert metrics["distance"] is None and metrics["found"] is False
        with ws.transaction() as db:
            cid = ws.add_candidate(db, face.id, "gan", 999_999, face.attributes, metrics,
                                   png_bytes(blank, None))
        (blind,) = [c for c in ws.candidates() if c.id == cid]
        for rule, passes in [("distance >= 0", False), ("not distance < 0.6", False),
                             ("not smile_kept", False), ("abs_d_pose <= 90", False),
                             ("not face_found", True), ("found", False),
                             ('distance >= 0.6 or method == "gan"', True),
                             ('distance >= 0.6 and method == "gan"', False)]:
            assert parse_rule(rule).passes(blind) is passes, rule
        report = accept_by_rule(ws, "distance >= 0", dry_run=True)
        assert report.unmeasured == 1 and cid not in report.accepted["gan"]
        assert report.count == len(ws.candidates()) - 1


@pytest.mark.data
def test_a_workspace_from_before_groups_opens_and_gains_them(ws_path):
    with Workspace(ws_path) as ws:
        first = ws.candidates()[0]
        ws.decide(first.id, "accepted")
    with sqlite3.connect(ws_path) as db:  # as schema 1 looked: no bulk_ops, no history.bulk
        db.executescript("""
            DROP INDEX history_bulk;
            CREATE TABLE old_history (id INTEGER PRIMARY KEY, candidate_id INTEGER NOT NULL
                REFERENCES candidates(id), old TEXT NOT NULL, new TEXT NOT NULL,
                at REAL NOT NULL);
            INSERT INTO old_history SELECT id, candidate_id, old, new, at FROM history;
            DROP TABLE history; ALTER TABLE old_history RENAME TO history;
            DROP TABLE bulk_ops; PRAGMA user_version=1;""")
    with Workspace(ws_path) as ws:
        assert ws.db.execute("PRAGMA user_version").fetchone()[0] == 3  # on to descriptor2
        assert "bulk" in {r[1] for r in ws.db.execute("PRAGMA table_info(history)")}
        report = accept_by_rule(ws, "distance >= 0")
        assert report.count == len(ws.candidates()) - 1 and report.already_accepted == 1
        assert len(ws.undo_step().candidate_ids) == report.count
        assert ws.undo() == first.id  # the old decision undoes as before
        assert all(c.decision == "pending" for c in ws.candidates())


@pytest.mark.data
def test_cli_exit_codes_and_messages(ws_path, tmp_path, capsys):
    assert main(["accept", str(ws_path), "--rule", "distnce >= 0.6"]) == 2
    err = capsys.readouterr().err
    assert "unknown name 'distnce'" in err and "face_found" in err and "abs_d_yaw" in err
    assert main(["accept", str(ws_path), "--undo"]) == 2
    assert "nothing to undo" in capsys.readouterr().err
    assert main(["accept", str(tmp_path / "none.studio"), "--rule", "distance >= 0.6"]) == 2
    assert "there is no workspace" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # neither --rule nor --undo
        main(["accept", str(ws_path)])
    assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        main(["accept", str(ws_path), "--rule", "distance >= 0.6", "--undo"])
    assert all(d == "pending" for d in _decisions(ws_path).values())
    proc = subprocess.run([sys.executable, "-m", "studio", "accept", str(ws_path), "--rule",
                           "distance >= 0.6", "--best-per-face"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "rule: distance >= 0.6 (best per face: the highest distance)"
    accepted = sum(d == "accepted" for d in _decisions(ws_path).values())
    assert lines[1].startswith(f"accepted {accepted}: ") and accepted <= 3
    assert lines[2].startswith(f"left undecided {len(_decisions(ws_path)) - accepted}: ")
    assert any(line.startswith("faces: ") and line.endswith(" of 3 have no accepted candidate")
               for line in lines)
    assert "--undo` reverts it whole" in lines[-1]
