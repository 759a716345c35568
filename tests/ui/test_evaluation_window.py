"""The evaluation window: a run on a folder, plotted and cancelled; its state and the
progress signal."""

from __future__ import annotations

import threading

import pytest

pytestmark = pytest.mark.data


def test_evaluation_window_runs_on_a_folder_and_plots(qtbot, window, tmp_path, genki_test,
                                                       monkeypatch):
    import shutil

    import pyqtgraph as pg

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))  # measured now, not cached
    folder = tmp_path / "faces"
    folder.mkdir()
    for item in genki_test[:4]:
        shutil.copy(item.path, folder / item.path.name)
    (folder / "broken.jpg").write_bytes(b"nothing")
    view = window.open_evaluation()
    qtbot.addWidget(view)
    view.start()
    assert "Choose a folder" in view.status.text()
    view.folder.setText(str(folder))
    view.out.setText(str(tmp_path / "report"))
    for family, box in view.methods.items():  # a short run: the GAN against blurring
        box.setChecked(family in ("gan", "blur"))
    view.run_button.click()
    assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: view.run_button.isEnabled(), timeout=180000)
    assert "report written" in view.status.text() and "broken.jpg" in view.status.text()
    assert [r.method for r in view.results] == ["original", "gan", "blur-light", "blur-strong"]
    points = [i for i in view.scatter.getPlotItem().items if isinstance(i, pg.ScatterPlotItem)]
    assert len(points) == 4
    gan = next(r for r in view.results if r.method == "gan")
    # privacy as the report's trade-off has it: another person to both recognizers
    assert points[1].data["x"][0] == pytest.approx(gan.deidentified_both)
    curves = view.histogram.getPlotItem().listDataItems()
    assert len(curves) == 3  # every output but the original itself
    assert view.table.rowCount() > 8 and view.table.item(0, 0).text().startswith("Utility")
    assert (tmp_path / "report" / "index.html").is_file()
    assert view.progress.value() == view.progress.maximum() == 5  # the broken file too
    view.close()


def test_evaluation_can_be_cancelled(qtbot, window, tmp_path, genki_test, monkeypatch):
    import shutil

    monkeypatch.setenv("STUDIO_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "faces"
    folder.mkdir()
    for item in genki_test[:30]:
        shutil.copy(item.path, folder / item.path.name)
    view = window.open_evaluation()
    qtbot.addWidget(view)
    view.folder.setText(str(folder))
    view.out.setText(str(tmp_path / "report"))
    view.run_button.click()
    view.cancel_button.click()
    qtbot.waitUntil(lambda: view.run_button.isEnabled(), timeout=180000)
    assert view.status.text().startswith("Cancelled")
    assert all(r.n < 30 for r in view.results)  # stopped before the 30 faces were done
    assert (tmp_path / "report" / "index.html").is_file()  # what was done is reported
    view.close()


def test_evaluation_and_crowd_states_announce_changes_once(qtbot, emits):
    from studio.ui.crowd_state import CrowdReportState
    from studio.ui.evaluation_state import EvaluationState

    ev = EvaluationState()
    emits(ev.options_changed, lambda: ev.set_options(folder="/x", limit=5))
    emits(ev.options_changed, lambda: ev.set_options(folder="/x", limit=5), 0)
    emits(ev.options_changed, lambda: ev.set_options(families=["gan"]))
    emits(ev.options_changed, lambda: ev.set_options(families=("gan",)), 0)
    for signal, setter, value in ((ev.running_changed, ev.set_running, True),
                                  (ev.cancelled_changed, ev.set_cancelled, True),
                                  (ev.dataset_changed, ev.set_dataset, "genki"),
                                  (ev.message_changed, ev.set_message, "Evaluating …"),
                                  (ev.result_changed, ev.set_result, object())):
        emits(signal, lambda s=setter, v=value: s(v))
        emits(signal, lambda s=setter, v=value: s(v), 0)
    emits(ev.progress_changed, lambda: ev.set_progress(1, 4))
    emits(ev.progress_changed, lambda: ev.set_progress(1, 4), 0)

    crowd = CrowdReportState()
    emits(crowd.paths_changed, lambda: crowd.set_paths(results="r.csv"))
    emits(crowd.paths_changed, lambda: crowd.set_paths(results="r.csv"), 0)
    analysis, figures = object(), {}
    emits(crowd.result_changed, lambda: crowd.set_result(analysis, figures))
    emits(crowd.result_changed, lambda: crowd.set_result(analysis, figures), 0)
    for signal, setter, value in ((crowd.running_changed, crowd.set_running, True),
                                  (crowd.message_changed, crowd.set_message, "Analysing …")):
        emits(signal, lambda s=setter, v=value: s(v))
        emits(signal, lambda s=setter, v=value: s(v), 0)


def test_evaluation_window_binds_to_its_state_and_progress_signal(qtbot):
    from studio.ui.evaluation_view import EvaluationWindow
    from studio.ui.workers import ProgressSignal

    view = EvaluationWindow()
    qtbot.addWidget(view)
    view.folder.setText("/photos")
    view.methods["mask"].setChecked(False)
    view.limit.setValue(7)
    assert (view.state.folder, view.state.limit) == ("/photos", 7)
    assert "mask" not in view.state.families
    view.state.set_options(out_dir="/report")
    assert view.out.text() == "/report"
    view.state.set_running(True)
    assert not view.run_button.isEnabled() and view.cancel_button.isEnabled()
    view.cancel_button.click()
    assert view.state.cancelled
    # The core's progress(done, total, message), called from a worker thread.
    progress = ProgressSignal()
    progress.changed.connect(lambda done, total, _m: view.state.set_progress(done, total))
    worker = threading.Thread(target=progress, args=(3, 9, "faces"))
    worker.start()
    worker.join()
    qtbot.waitUntil(lambda: view.progress.value() == 3 and view.progress.maximum() == 9)
    view.close()
