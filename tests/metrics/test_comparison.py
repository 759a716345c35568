"""A surrogate's comparison with its original carries both recognizers' figures, each
judged at its own threshold (issue 28)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.analysis.landmarks import largest_face
from studio.core.analysis.recognizer import same_person_threshold
from studio.core.metrics.comparison import Comparison, another_person, compare

pytestmark = pytest.mark.data


def test_the_comparison_carries_both_figures(engine, utk_face):
    original = largest_face(engine.analyzer.analyze(utk_face).faces)
    mirror = compare(engine.analyzer, original, np.ascontiguousarray(utk_face[:, ::-1]))
    assert mirror.distance < 0.6 and mirror.similarity2 >= same_person_threshold()
    assert mirror.same_person and mirror.same_person_dlib and mirror.same_person2

    gan = engine.generator.sample(original.attributes, seed=3)[0]
    other = compare(engine.analyzer, original, gan)
    assert other.distance is not None and -1 <= other.similarity2 <= 1
    assert other.same_person == (other.same_person_dlib or other.same_person2)


def test_another_person_needs_both_recognizers():
    t2 = same_person_threshold()
    assert another_person(0.7, t2 - 0.1)
    assert not another_person(0.7, t2 + 0.01)  # dlib alone is not enough
    assert not another_person(0.5, t2 - 0.1)
    assert not another_person(0.7, None) and not another_person(None, 0.0)
    shown = Comparison(None, None, 0.7, None)  # an original stored before the second
    assert shown.same_person is False and shown.same_person2 is None
