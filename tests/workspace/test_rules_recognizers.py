"""The curation rules know the second recognizer's figure (issue 28)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from studio.core.workspace.rules import NAMES, RuleError, names_help, parse_rule


def _candidate(**metrics) -> SimpleNamespace:
    base = {"found": True, "distance": 0.72, "arcface_similarity": 0.21, "smile_kept": True,
            "joy": 0.8, "yaw": 0, "pitch": 0, "roll": 0, "d_joy": 0, "d_yaw": 0, "d_pitch": 0,
            "d_roll": 0}
    return SimpleNamespace(metrics={**base, **metrics}, method="context")


def test_a_rule_on_the_second_recognizers_similarity():
    rule = parse_rule("distance >= 0.6 and arcface_similarity < 0.37 and smile_kept")
    assert rule.passes(_candidate())
    assert not rule.passes(_candidate(arcface_similarity=0.45))
    # a candidate stored before the second recognizer: unknown, so the rule does not pass
    old = _candidate()
    del old.metrics["arcface_similarity"]
    assert not rule.passes(old)
    assert "arcface_similarity" in NAMES and "arcface_similarity" in names_help()
    with pytest.raises(RuleError, match="arcface_similarity"):
        parse_rule("arcface < 0.3")
