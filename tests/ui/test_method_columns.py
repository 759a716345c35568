"""The window reads the registry of surrogate methods (issue 26): a method registered at
run time gets its column, heading, colour and verdict in the comparison panels, with no
file of the window touched. No models and no research data: these run everywhere."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from studio.core.analysis.attributes import Attributes
from studio.core.analysis.landmarks import BLENDSHAPE_NAMES
from studio.core.surrogates.method_makers import MethodMaker
from studio.core.surrogates.registry import GAN, IN_CONTEXT, MORPHABLE, REGISTRY, MethodSpec
from studio.ui.comparison_state import ComparisonState
from studio.ui.controller import Controller
from studio.ui.main_window import MainWindow
from studio.ui.metrics_panels import ExpressionPanel, IdentityPanel
from studio.ui.state import StudioState


class Grey(MethodMaker):
    """A toy maker: the face crop, grey (never drawn here: the panels only read specs)."""

    def make(self, engine, image, face, seeds, others=None) -> list[np.ndarray]:
        return [np.full((64, 64, 3), 128, np.uint8) for _ in seeds]


@pytest.fixture
def toy():
    spec = REGISTRY.register(MethodSpec("toy", "toy surrogate", "#123456", Grey,
                                        short="toy", candidate=True))
    try:
        yield spec
    finally:
        REGISTRY.unregister(spec.key)


def _face(joy: float):
    attributes = Attributes(**{**Attributes.defaults().to_dict(), "joy": joy})
    return SimpleNamespace(attributes=attributes, blendshapes=np.full(len(BLENDSHAPE_NAMES), 0.1))


def _headings(panel: ExpressionPanel) -> list[str]:
    table = panel.table
    return [table.horizontalHeaderItem(i).text() for i in range(table.columnCount())]


def test_a_method_registered_at_run_time_gets_its_column_and_verdict(qtbot, toy) -> None:
    state = ComparisonState()
    expression, identity = ExpressionPanel(state), IdentityPanel(state)
    for panel in (expression, identity):
        qtbot.addWidget(panel)
    assert _headings(expression)[-2:] == ["toy", "Δ"]
    assert expression.table.horizontalHeaderItem(len(_headings(expression)) - 1).toolTip() \
        == "toy surrogate minus the original"
    assert [m.key for m in expression.methods][-1] == "toy"
    assert [b.opts["name"] for b in expression.bars][-1] == "toy"
    assert expression.bars[-1].opts["brush"] == "#123456"
    curve = identity.curves["toy"]
    assert curve.opts["name"] == "toy" and curve.opts["pen"].color().name() == "#123456"

    original, drawn = _face(0.2), _face(0.9)
    state.set_face(original)
    state.set_comparison("toy", SimpleNamespace(original=original, surrogate=drawn,
                                                distance=0.95, same_person=False,
                                                smile_kept=False))
    column = _headings(expression).index("toy")
    assert expression.table.item(0, column).text() == "0.90"
    assert expression.table.item(0, column + 1).text() == "0.70"
    assert "toy: smile decision CHANGED!" in expression.verdict.text()
    assert identity.verdicts["toy"].text().startswith("Toy: Different person")
    assert identity.verdicts[GAN].text() == "GAN: –"  # the others wait for their own


def test_the_main_window_shows_every_candidate_method(qtbot, tmp_path, toy) -> None:
    state = StudioState()
    controller = Controller(state, engine_factory=lambda: None)  # no models: none needed
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(state, controller, settings)
    qtbot.addWidget(win)
    try:
        headings = _headings(win.expression)
        # Each at the default preset: the in-context column shows the Privacy menu's.
        shown = [k for k in REGISTRY.candidates() if REGISTRY[k].privacy == "default"]
        for key in shown:
            assert REGISTRY[key].column in headings
        assert list(win.identity.verdicts) == shown
        assert "context-strict" in REGISTRY.candidates()
        assert REGISTRY["context-strict"].column not in headings
        assert {GAN, MORPHABLE, IN_CONTEXT, "toy"} <= set(win.identity.verdicts)
        # The window draws three methods live, each in its own lane.
        assert set(controller.lanes) == {GAN, MORPHABLE, IN_CONTEXT}
        assert controller.idle
    finally:
        controller.stop()


def test_a_method_unregistered_is_gone_from_a_panel_built_after(qtbot, toy) -> None:
    REGISTRY.unregister(toy.key)
    try:
        panel = ExpressionPanel(ComparisonState())
        qtbot.addWidget(panel)
        assert "toy" not in _headings(panel)
    finally:
        REGISTRY.register(toy)  # the fixture unregisters it again
