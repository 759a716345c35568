"""The identity panel shows both recognizers' figures, each with its threshold, and calls a
surrogate the same person when either recognizer does (issue 28)."""

from __future__ import annotations

import numpy as np
import pytest

from studio.core.analysis.landmarks import largest_face
from studio.core.analysis.recognizer import same_person_threshold
from studio.core.metrics.comparison import Comparison, compare
from studio.core.surrogates.registry import GAN
from studio.ui.comparison_state import ComparisonState
from studio.ui.metrics_panels import IdentityPanel


@pytest.mark.data
def test_the_identity_panel_shows_both_figures(qtbot, engine, utk_face):
    state = ComparisonState()
    panel = IdentityPanel(state)
    qtbot.addWidget(panel)
    original = largest_face(engine.analyzer.analyze(utk_face).faces)
    t2 = f"{same_person_threshold():.2f}"
    state.set_face(original)

    mirror = compare(engine.analyzer, original, np.ascontiguousarray(utk_face[:, ::-1]))
    state.set_comparison(GAN, mirror)
    text = panel.verdicts[GAN].text()
    assert text.startswith("GAN: SAME PERSON")
    assert f"dlib distance {mirror.distance:.2f} < 0.6" in text
    assert f"ArcFace similarity {mirror.similarity2:.2f} ≥ {t2}" in text

    # dlib says another person, the second recognizer the same: the same person
    state.set_comparison(GAN, Comparison(original, original, 0.72, 0.55))
    text = panel.verdicts[GAN].text()
    assert text.startswith("GAN: SAME PERSON") and f"0.55 ≥ {t2}" in text and "0.72 ≥ 0.6" in text
    state.set_comparison(GAN, Comparison(original, original, 0.72, 0.10))
    text = panel.verdicts[GAN].text()
    assert text.startswith("GAN: Different person") and f"0.10 < {t2}" in text
