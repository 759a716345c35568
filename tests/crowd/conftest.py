"""The crowd wing's fixtures: a hand-made analysis whose numbers are known by heart (the
simulated crowd, ``crowd_study``, is shared with the windows and the command line, in
tests/conftest.py)."""

from __future__ import annotations

import pytest

from studio.core.crowd.formats import Answer, MappingRow, ParsedResults
from studio.core.crowd.statistics import analyze


@pytest.fixture
def hand_made():
    """Five originals, ten answers each; consensus 1.0, 0.8, 0.7, 0.5 (tie) and 0.9."""
    votes = {"k1": (True, 10, 0), "k2": (True, 8, 2), "k3": (False, 7, 3), "k4": (False, 5, 5),
             "k5": (True, 1, 9)}  # truth, smile answers, no-smile answers
    joys = {"k1": 0.5, "k2": 0.7, "k3": 0.2, "k4": None, "k5": 0.71}
    mapping = {f"i{k}": MappingRow(f"i{k}", k, "original", None, "item", None, joys[k])
               for k in votes}
    answers = [Answer(f"W{w}", f"i{k}", w < n_smile, "x")
               for k, (_, n_smile, n_no) in votes.items() for w in range(n_smile + n_no)]
    truth = {k: v[0] for k, v in votes.items()}
    return analyze(ParsedResults("hand", "mturk", answers), mapping, truth)
