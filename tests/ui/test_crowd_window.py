"""The crowd report window: the report's figures from a simulated crowd's files."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.data


def test_crowd_report_window_shows_the_report_figures(qtbot, window, tmp_path, crowd_study):
    study = crowd_study(40, 10, {"gan": 0.8, "3d": 0.7}, seed=5)
    mapping, truth, results = study.write(tmp_path)
    view = window.open_crowd_report()
    qtbot.addWidget(view)
    view.run.click()
    assert "Choose the results, mapping, truth" in view.summary.text()
    for key, path in (("results", results), ("mapping", mapping), ("truth", truth)):
        view.paths[key].setText(str(path))
    view.run.click()
    qtbot.waitUntil(lambda: view.tabs.count() == 4, timeout=60000)
    assert [view.tabs.tabText(i) for i in range(4)] == ["accuracy", "differences", "workers",
                                                        "joy"]
    accuracy = {v.version: v.accuracy for v in view.analysis.versions}
    assert accuracy["gan"] == pytest.approx(study.correct["gan"] / study.total["gan"])
    assert "gan: accuracy" in view.summary.text()
    # A broken last row: named among the first problems, as the command line names it.
    rows = len(results.read_text(encoding="utf-8").splitlines())
    with results.open("a", encoding="utf-8") as fh:
        fh.write("<b>mallory</b>\n")
    view.run.click()
    qtbot.waitUntil(lambda: "The first problems" in view.summary.text(), timeout=60000)
    assert f"line {rows + 1}: 1 fields" in view.summary.text()
    view.close()
