"""The studio window driven as a person would, offscreen, with pytest-qt."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QSettings, Qt, QThreadPool

from studio.core.analysis.attributes import SPEC
from studio.core.surrogates.registry import GAN, MORPHABLE
from studio.ui.controller import Controller
from studio.ui.main_window import MainWindow
from studio.ui.state import StudioState
from studio.ui.workers import LatestOnly

pytestmark = pytest.mark.data


@pytest.fixture
def window(qtbot, tmp_path, engine):
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    state = StudioState()
    controller = Controller(state, engine_factory=lambda: engine)
    win = MainWindow(state, controller, settings)
    qtbot.addWidget(win)
    win.show()
    controller.load_models()
    qtbot.waitUntil(lambda: controller.engine is not None, timeout=30000)
    yield win
    controller.stop()
    QThreadPool.globalInstance().waitForDone(30000)


def open_and_wait(qtbot, win, path) -> None:
    before = win.surrogate.generation
    win.open_path(path)
    qtbot.waitUntil(lambda: win.state.path == str(path), timeout=30000)
    if win.state.face is not None:
        qtbot.waitUntil(lambda: win.surrogate.generation > before, timeout=30000)
        qtbot.waitUntil(lambda: win.state.compared.comparison(GAN) is not None, timeout=30000)


def test_open_real_face_shows_attributes(qtbot, window, utk_face_path, analyzer):
    open_and_wait(qtbot, window, utk_face_path)
    expected = analyzer.analyze_path(utk_face_path).faces[0].attributes
    panel = window.attributes
    assert panel.values["joy"].text() == f"{expected.joy:.2f}"
    assert panel.values["yaw"].text() == f"{expected.yaw:+.1f}°"
    assert panel.bars["p_male"].value() == int(1000 * expected.p_male)
    # The sliders start at the estimate.
    assert window.sliders.sliders["yaw"].value() == round(expected.yaw)
    assert window.surrogate.surrogate.pixmap() is not None
    verdict = window.identity.verdicts[GAN].text()
    assert any(t in verdict for t in ("Different person", "SAME PERSON", "No face"))
    comp = window.state.compared.comparison(GAN)
    assert comp.original is window.state.face


def test_photo_is_analysed_while_the_generator_still_loads(qtbot, tmp_path, utk_face_path):
    """The window's staged start: landmarks and attributes first, then the surrogate and
    the identity measure once torch and the generator are in."""
    from studio.core.surrogates.engine import SurrogateEngine

    gate = threading.Event()

    class SlowGenerationEngine(SurrogateEngine):
        def load_generation(self) -> None:
            gate.wait(60)  # as if importing torch took a long time
            super().load_generation()

    engines: list[SurrogateEngine] = []
    state = StudioState()
    controller = Controller(state, engine_factory=lambda: engines.append(
        SlowGenerationEngine(staged=True)) or engines[0])
    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(state, controller, settings)
    qtbot.addWidget(win)
    win.show()
    try:
        controller.load_models(then=lambda: win.open_path(utk_face_path))
        qtbot.waitUntil(lambda: state.face is not None, timeout=30000)
        assert state.face.descriptor is None and state.surrogate is None
        assert win.attributes.values["joy"].text() == f"{state.face.attributes.joy:.2f}"
        assert "loading" in win.surrogate.surrogate.text()
        gate.set()
        qtbot.waitUntil(lambda: state.compared.comparison(GAN) is not None
                        and state.compared.comparison(GAN).distance is not None, timeout=60000)
        assert state.face.descriptor is not None and state.surrogate is not None
        assert "step" in win.device_label.text()  # the model is named once it has loaded
    finally:
        gate.set()
        QThreadPool.globalInstance().waitForDone(30000)
        for e in engines:
            e.close()


def _pixels(label) -> np.ndarray:
    img = label.pixmap().toImage().convertToFormat(label.pixmap().toImage().Format.Format_RGB888)
    ptr = img.constBits()
    return np.frombuffer(ptr, np.uint8, img.sizeInBytes()).copy()


@pytest.mark.parametrize("name,value", [("joy", 5), ("p_male", 95), ("yaw", 25),
                                        ("pitch", -15), ("roll", 12)])
def test_each_slider_draws_a_new_surrogate(qtbot, window, utk_face_path, name, value):
    open_and_wait(qtbot, window, utk_face_path)
    gen, expr, ident = (window.surrogate.generation, window.expression.updates,
                        window.identity.updates)
    before = _pixels(window.surrogate.surrogate)
    table_before = window.expression.table.item(0, 1).text()
    window.sliders.sliders[name].setValue(value)  # what dragging does, step by step
    qtbot.waitUntil(lambda: window.surrogate.generation > gen, timeout=30000)
    qtbot.waitUntil(lambda: window.expression.updates > expr and window.identity.updates > ident
                    and not window.controller.lanes[GAN].measure_jobs.busy, timeout=30000)
    assert not np.array_equal(before, _pixels(window.surrogate.surrogate))
    requested = window.state.surrogate.requested
    assert getattr(requested, name) == pytest.approx(value / SPEC[name].ticks_per_unit)
    comp = window.state.compared.comparison(GAN)
    if comp.distance is not None:  # the history plot gets the newest distance
        assert window.state.compared.distances[GAN][-1] == comp.distance
    else:
        assert "No face" in window.identity.verdicts[GAN].text()
    assert table_before is not None


def test_choose_a_face_in_a_group_photo(qtbot, window, tmp_path, group_photo):
    path = tmp_path / "group.png"
    Image.fromarray(group_photo).save(path)
    open_and_wait(qtbot, window, path)
    assert len(window.state.analysis.faces) == 2 and window.state.face_index == 0
    first = window.attributes.values["p_male"].text()
    gen = window.surrogate.generation
    qtbot.mouseClick(window.photo.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.photo.face_center_in_view(1))
    assert window.state.face_index == 1
    second = window.state.analysis.faces[1].attributes
    assert window.attributes.values["p_male"].text() == f"{second.p_male:.2f}" != first
    qtbot.waitUntil(lambda: window.surrogate.generation > gen
                    and window.state.compared.comparison(GAN) is not None, timeout=30000)
    assert window.state.compared.comparison(GAN).original is window.state.analysis.faces[1]


def test_bad_inputs_give_a_message_and_keep_the_window_usable(qtbot, window, tmp_path,
                                                              utk_face_path):
    text = tmp_path / "notes.jpg"
    text.write_text("not a picture at all")
    window.open_path(text)
    qtbot.waitUntil(lambda: window.last_message[0] == "error", timeout=30000)
    assert "not an image" in window.last_message[1]
    blank = tmp_path / "wall.png"
    Image.new("RGB", (300, 300), (180, 170, 160)).save(blank)
    window.open_path(blank)
    qtbot.waitUntil(lambda: "No face found" in window.last_message[1], timeout=30000)
    assert window.state.face is None and window.attributes.values["joy"].text() == "–"
    open_and_wait(qtbot, window, utk_face_path)
    assert window.state.face is not None
    # An animated GIF of the face: analysed, and the status says which frame was read.
    face = Image.open(utk_face_path)
    animated = tmp_path / "moving.gif"
    face.save(animated, save_all=True, append_images=[face.rotate(5), face.rotate(-5)])
    window.open_path(animated)
    qtbot.waitUntil(lambda: "moving.gif" in window.last_message[1], timeout=30000)
    assert window.last_message[0] == "info" and window.state.face is not None
    assert "3 frames" in window.last_message[1] and "first" in window.last_message[1]


def test_a_slow_superseded_request_is_never_shown(qtbot):
    runner = LatestOnly()
    shown = []
    runner.result.connect(lambda _id, value: shown.append(value))

    def slow():
        time.sleep(0.6)
        return "old"

    runner.submit(slow)
    runner.submit(lambda: "middle")  # waits, then is superseded before it runs
    last = runner.submit(lambda: "new")
    qtbot.waitUntil(lambda: not runner.busy, timeout=10000)
    assert shown == ["new"] and runner.latest_id == last
    assert runner.dropped == 2


def test_save_surrogate_png_has_no_original_data(qtbot, window, tmp_path, utk_face_path):
    open_and_wait(qtbot, window, utk_face_path)
    out = window.save_surrogate(str(tmp_path / "surrogate_0001.png"))
    assert out is not None and out.name == "surrogate_0001.png"
    with Image.open(out) as img:
        assert img.size == (256, 256) and img.format == "PNG"
        assert not img.info.get("exif") and not img.getexif()
        assert utk_face_path.name not in str(img.info)


def test_shortcuts_are_in_the_menus(window):
    for action, key in [(window.open_action, "Ctrl+O"), (window.next_action, "Ctrl+Right"),
                        (window.prev_action, "Ctrl+Left"), (window.new_id_action, "Ctrl+N"),
                        (window.match_action, "Ctrl+M"), (window.save_action, "Ctrl+S")]:
        assert action.shortcut().toString() == key


def test_match_original_and_identity_controls(qtbot, window, utk_face_path):
    open_and_wait(qtbot, window, utk_face_path)
    estimate = window.state.face.attributes
    window.sliders.sliders["joy"].setValue(3)
    window.match_action.trigger()
    assert window.state.targets.joy == pytest.approx(estimate.joy, abs=1e-3)
    seed = window.state.seed_a
    window.new_id_action.trigger()
    assert window.state.seed_a != seed
    window.sliders.lock.setChecked(True)
    window.new_id_action.trigger()
    assert not window.sliders.new_id.isEnabled()
    gen = window.surrogate.generation
    window.sliders.mix.setValue(50)
    qtbot.waitUntil(lambda: window.surrogate.generation > gen, timeout=30000)
    assert window.state.mix == 0.5


def test_overlay_setting_persists(window):
    window.set_overlay("mesh")
    assert window.photo.overlay == "mesh"
    assert window.settings.value("overlay") == "mesh"


def test_next_and_previous_in_folder_and_drop(qtbot, window, tmp_path, utk_face_path,
                                             group_photo):
    import shutil

    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    shutil.copy(utk_face_path, tmp_path / "a_face.jpg")
    Image.fromarray(group_photo).save(tmp_path / "b_group.png")
    (tmp_path / "c_notes.txt").write_text("ignored: not an image suffix")
    open_and_wait(qtbot, window, tmp_path / "a_face.jpg")
    window.next_action.trigger()
    qtbot.waitUntil(lambda: window.state.path == str(tmp_path / "b_group.png"), timeout=30000)
    assert len(window.state.analysis.faces) == 2
    window.prev_action.trigger()
    qtbot.waitUntil(lambda: window.state.path == str(tmp_path / "a_face.jpg"), timeout=30000)
    assert window.settings.value("last_folder") == str(tmp_path)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(tmp_path / "b_group.png"))])
    drop = QDropEvent(QPoint(10, 10), Qt.DropAction.CopyAction, mime,
                      Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(drop)
    qtbot.waitUntil(lambda: window.state.path == str(tmp_path / "b_group.png"), timeout=30000)
    recent = window._recent()
    assert recent[0] == str(tmp_path / "b_group.png") and str(tmp_path / "a_face.jpg") in recent


def wait_3d(qtbot, win, after: int) -> None:
    qtbot.waitUntil(lambda: win.surrogate3d.generation > after, timeout=30000)
    lane = win.controller.lanes[MORPHABLE]
    qtbot.waitUntil(lambda: not lane.jobs.busy and not lane.measure_jobs.busy, timeout=30000)


def test_3d_panel_renders_orbits_and_is_measured(qtbot, window, utk_face_path):
    open_and_wait(qtbot, window, utk_face_path)
    view = window.surrogate3d
    qtbot.waitUntil(lambda: window.state.surrogate3d is not None
                    and window.state.measured3d is window.state.surrogate3d, timeout=30000)
    comp = window.state.compared.comparison(MORPHABLE)
    assert comp.original is window.state.face and comp.surrogate is not None
    assert window.expression.table.item(0, 3).text() == f"{comp.surrogate.attributes.joy:.2f}"
    assert window.identity.verdicts[MORPHABLE].text().startswith("3D: ")
    assert "Different person" in window.identity.verdicts[MORPHABLE].text()
    front = _pixels(view.image)

    # Drag to orbit: a new camera view and a new render.
    gen = view.generation
    label = view.image
    qtbot.mousePress(label, Qt.MouseButton.LeftButton, pos=label.rect().center())
    qtbot.mouseMove(label, label.rect().center() + QPoint(60, 0))
    qtbot.mouseRelease(label, Qt.MouseButton.LeftButton, pos=label.rect().center()
                       + QPoint(60, 0))
    wait_3d(qtbot, window, gen)
    assert window.state.view3d[0] == pytest.approx(30.0)
    assert window.state.surrogate3d.request.view.azimuth == pytest.approx(30.0)
    assert not np.array_equal(front, _pixels(view.image))

    # Reset, then wireframe: a different picture of the same head.
    gen = view.generation
    view.reset.click()
    wait_3d(qtbot, window, gen)
    assert window.state.view3d == (0.0, 0.0, 1.0)
    gen = view.generation
    view.mode.setCurrentIndex(view.mode.findData("wireframe"))
    wait_3d(qtbot, window, gen)
    assert window.state.surrogate3d.request.mode == "wireframe"
    assert not np.array_equal(front, _pixels(view.image))

    # The reconstruction is labelled as such.
    gen = view.generation
    view.identity.setCurrentIndex(view.identity.findData("reconstruction"))
    wait_3d(qtbot, window, gen)
    assert window.state.surrogate3d.is_reconstruction
    assert "NOT anonymous" in view.caption.text()
    view.identity.setCurrentIndex(view.identity.findData("seed"))
    view.mode.setCurrentIndex(view.mode.findData("textured"))


def test_joy_slider_moves_the_3d_smile(qtbot, window, utk_face_path):
    # A fixed identity: about 1 joy edit in 25 misses (studio evaluate-3d measures the rate).
    window.state.set_identity(seed_a=11, locked=True)
    open_and_wait(qtbot, window, utk_face_path)
    qtbot.waitUntil(lambda: window.state.surrogate3d is not None, timeout=30000)
    for value in (95, 5):
        gen = window.surrogate3d.generation
        window.sliders.sliders["joy"].setValue(value)
        wait_3d(qtbot, window, gen)
        qtbot.waitUntil(lambda: window.state.measured3d is window.state.surrogate3d,
                        timeout=30000)
        assert window.state.surrogate3d.request.targets.joy == pytest.approx(value / 100)
        seen = window.state.compared.comparison(MORPHABLE).surrogate
        assert seen is not None
        assert seen.attributes.smiling == (value > 50)


def test_save_latent_walk_writes_filmstrip_and_gif(qtbot, window, utk_face_path, tmp_path):
    open_and_wait(qtbot, window, utk_face_path)
    window.save_walk(str(tmp_path / "demo_walk.png"))
    qtbot.waitUntil(lambda: "demo_walk.gif" in window.last_message[1], timeout=30000)
    with Image.open(tmp_path / "demo_walk.png") as strip, \
            Image.open(tmp_path / "demo_walk.gif") as gif:
        assert strip.size[0] > 8 * strip.size[1] and gif.n_frames == 16


def test_curation_window_reviews_by_keyboard(qtbot, window, engine, tmp_path, genki_test):
    import shutil

    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.store import Workspace

    folder = tmp_path / "photos"
    folder.mkdir()
    for item in genki_test[:2]:
        shutil.copy(item.path, folder / item.path.name)
    with Workspace(tmp_path / "c.studio", create=True) as ws:
        run_batch(folder, ws, engine, candidates=1, methods=("gan", "3d", "context"))
    cur = window.open_workspace(str(tmp_path / "c.studio"))
    qtbot.addWidget(cur)
    # One candidate of each method: GAN, 3D and in context.
    assert len(cur.state.face_ids) == 2
    assert sorted(c.method for c in cur.state.candidates) == ["3d", "context", "gan"]
    qtbot.waitUntil(lambda: any(c is not None for c in cur.state.compared.comparisons.values()),
                    timeout=30000)
    blurred_px = cur.original.pixmap().toImage()
    qtbot.keyClick(cur, Qt.Key.Key_Space)
    assert cur.state.revealed and cur.original.pixmap().toImage() != blurred_px
    first = cur.state.candidate
    qtbot.keyClick(cur, Qt.Key.Key_A)
    assert {c.id: c.decision for c in cur.ws.candidates()}[first.id] == "accepted"
    second = cur.state.candidate
    assert second.id != first.id
    qtbot.keyClick(cur, Qt.Key.Key_R)
    assert {c.id: c.decision for c in cur.ws.candidates()}[second.id] == "rejected"
    qtbot.keyClick(cur, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {c.id: c.decision for c in cur.ws.candidates()}[second.id] == "pending"
    before = len(cur.ws.candidates())
    cur.controller.select(0)
    qtbot.keyClick(cur, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: len(cur.ws.candidates()) == before + 1, timeout=60000)
    cur.filter.setCurrentText("rejected")
    assert cur.state.face_ids == []
    cur.filter.setCurrentText("all")
    assert len(cur.state.face_ids) == 2
    QThreadPool.globalInstance().waitForDone(30000)
    # Export the accepted candidate from the dialog.
    dialog = cur.open_export()
    dialog.out_dir.setText(str(tmp_path / "exported"))
    dialog.mturk.setChecked(False)
    dialog.export_button.click()
    qtbot.waitUntil(lambda: dialog.report is not None or "color" in dialog.result.text(),
                    timeout=60000)
    assert dialog.report is not None, dialog.result.text()
    assert dialog.report.items + len(dialog.report.refused) == 1
    assert (tmp_path / "exported" / "labelstudio_tasks.json").is_file()
    dialog.close()
    cur.close()


def _batch(tmp_path, engine, genki_test, n: int = 2):
    """A real workspace: ``n`` GENKI-4K photos copied to tmp_path/photos, one GAN and one 3D
    candidate each. Returns the workspace file and the photo folder."""
    import shutil

    from studio.core.workspace.batch import run_batch
    from studio.core.workspace.store import Workspace

    folder = tmp_path / "photos"
    folder.mkdir()
    for item in genki_test[:n]:
        shutil.copy(item.path, folder / item.path.name)
    path = tmp_path / "w.studio"
    with Workspace(path, create=True) as ws:
        run_batch(folder, ws, engine, candidates=1, methods=("gan", "3d", "context"))
    return path, folder


def test_a_damaged_workspace_shows_its_recovery_and_the_window_stays_usable(
        qtbot, window, engine, tmp_path, genki_test, utk_face_path):
    import shutil

    from PySide6.QtWidgets import QMessageBox

    good, _ = _batch(tmp_path, engine, genki_test)
    bad = tmp_path / "bad.studio"
    shutil.copy(good, bad)
    size = bad.stat().st_size
    with bad.open("r+b") as fh:  # three pages of noise in the middle, as a bad disk would
        fh.seek((size // 2) // 4096 * 4096)
        fh.write(np.random.default_rng(0).bytes(3 * 4096))
    assert window.open_workspace(str(bad)) is None
    box = window.error_box
    qtbot.waitUntil(box.isVisible)
    assert box in window.findChildren(QMessageBox)  # not blocking: the test goes on
    assert box.windowModality() == Qt.WindowModality.WindowModal
    text = box.text()
    assert f"{bad} is damaged" in text and "nothing was changed" in text
    assert f"sqlite3 {bad} .recover | sqlite3 {tmp_path / 'bad-recovered.studio'}" in text
    assert ".dump" in text
    flags = box.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse
    assert flags & Qt.TextInteractionFlag.TextSelectableByKeyboard
    # The status bar says the start of the first line; the recovery is in the box only.
    first = text.splitlines()[0]
    assert window.status.text() in (first, first[:119] + "…")
    assert len(window.status.text()) <= 120
    assert "is damaged" in window.status.text() and ".recover" not in window.status.text()
    assert window.last_message[0] == "error"
    box.button(QMessageBox.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not window.findChildren(QMessageBox))
    assert bad.stat().st_size == size  # refused, never written to
    # The window goes on: a sound workspace opens, and a photo is analysed.
    cur = window.open_workspace(str(good))
    qtbot.addWidget(cur)
    assert len(cur.state.face_ids) == 2 and cur.state.missing == 0
    assert not cur.notice.isVisible()
    open_and_wait(qtbot, window, utk_face_path)
    assert window.state.face is not None
    QThreadPool.globalInstance().waitForDone(30000)
    cur.close()


def test_moved_originals_are_said_and_relinked(qtbot, window, engine, tmp_path, genki_test,
                                               monkeypatch):
    from PySide6.QtWidgets import QApplication

    from studio.ui import curation
    from studio.ui.curation_controller import MOVED, RELINKING

    path, folder = _batch(tmp_path, engine, genki_test)
    moved = tmp_path / "elsewhere" / "photos"
    moved.parent.mkdir()
    folder.rename(moved)
    cur = window.open_workspace(str(path))
    qtbot.addWidget(cur)
    state = cur.state
    assert state.missing == 2 and state.missing_folder == str(folder)
    assert cur.notice.isVisible() and cur.relink_button.isEnabled()
    assert "2 originals are not where they were recorded" in cur.notice_text.text()
    file_menu = cur.menuBar().actions()[0].menu()
    assert file_menu.actions()[0] is cur.relink_action
    assert cur.relink_action.text().replace("&", "") == "Relink originals…"
    # Reveal and regenerate say why they cannot, and change nothing.
    assert state.original is None and cur.original.pixmap().isNull()
    assert cur.original.text() == "original\nnot found"
    assert state.message == MOVED  # said as soon as the face is shown
    cur.activateWindow()  # its keys are window shortcuts
    qtbot.waitUntil(lambda: QApplication.activeWindow() is cur)
    state.set_message("")
    qtbot.keyClick(cur, Qt.Key.Key_Space)
    assert not state.revealed and state.message == MOVED and state.error
    assert cur.message.text() == MOVED
    before = len(cur.ws.candidates())
    state.set_message("")
    qtbot.keyClick(cur, Qt.Key.Key_G)
    assert state.message == MOVED
    QThreadPool.globalInstance().waitForDone(30000)
    qtbot.wait(50)
    assert len(cur.ws.candidates()) == before
    # Relinking to a folder without the photos finds none; an unknown OLD is refused.
    empty = tmp_path / "empty"
    empty.mkdir()
    cur.controller.relink(str(folder), str(empty))
    qtbot.waitUntil(lambda: not state.relinking, timeout=30000)
    assert state.message == "0 originals relinked, 2 still missing." and state.error
    assert cur.notice.isVisible()
    cur.controller.relink(str(tmp_path / "never"), str(empty))
    qtbot.waitUntil(lambda: not state.relinking, timeout=30000)
    assert state.message.startswith("Could not relink: no original of w.studio was recorded")
    # The action: OLD suggested from the missing paths, NEW from the folder dialog.
    asked = []

    def choose(parent, caption, start):
        asked.append((caption, start))
        return str(moved)

    monkeypatch.setattr(curation.QFileDialog, "getExistingDirectory", choose)
    cur.relink_action.trigger()
    assert state.relinking and not cur.relink_button.isEnabled()
    first = cur.ws.candidates()[0]
    cur.controller.decide("accepted")  # no write while the relink holds the workspace
    assert state.message == RELINKING
    assert cur.ws.candidates()[0].decision == first.decision
    qtbot.waitUntil(lambda: not state.relinking, timeout=30000)
    assert asked and str(folder) in asked[0][0] and asked[0][1] == str(tmp_path)
    assert state.message == "2 originals relinked, 0 still missing." and not state.error
    assert state.missing == 0 and not cur.notice.isVisible()
    assert all(cur.ws.locate(f.original_id).parent == moved for f in cur.ws.faces())
    # Reveal and regenerate work again, from the new place.
    assert state.original is not None
    qtbot.keyClick(cur, Qt.Key.Key_Space)
    assert state.revealed and not cur.original.pixmap().isNull()
    qtbot.keyClick(cur, Qt.Key.Key_G)
    qtbot.waitUntil(lambda: len(cur.ws.candidates()) == before + 1, timeout=60000)
    assert state.message.startswith("New ")
    QThreadPool.globalInstance().waitForDone(30000)
    cur.close()


def test_accept_all_that_pass_a_filter_counts_live_and_undoes_as_one(qtbot, window, engine,
                                                                      tmp_path, genki_test):
    import statistics

    from PySide6.QtWidgets import QApplication

    path, _ = _batch(tmp_path, engine, genki_test)  # 2 faces x (GAN, 3D, in context)
    cur = window.open_workspace(str(path))
    qtbot.addWidget(cur)
    state, ws = cur.state, cur.ws
    cands = ws.candidates()
    assert len(cands) == 6
    cur.controller.decide("rejected")  # a decision of its own, before the group
    rejected = next(c for c in ws.candidates() if c.decision == "rejected")
    edit_menu = cur.menuBar().actions()[1].menu()
    assert edit_menu.actions()[0] is cur.accept_rule_action
    assert cur.accept_rule_action.text().replace("&", "") == "Accept all that pass this filter…"
    cur.accept_rule_action.trigger()
    dialog = cur.accept_dialog
    assert dialog.isVisible() and dialog.rule.text() == "distance >= 0.65 and smile_kept and " \
        "face_found"
    # The count follows the rule as it is typed: a real split of these candidates.
    t = round(statistics.median(c.distance for c in cands), 4)
    expected = {c.id for c in cands if c.distance >= t and c.id != rejected.id}
    assert 0 < len(expected) < 5
    dialog.rule.setText(f"distance >= {t}")
    assert state.rule == f"distance >= {t}" and state.rule_preview.count == len(expected)
    assert dialog.count.text().startswith(f"Would accept {len(expected)} candidate")
    assert dialog.accept_button.isEnabled()
    assert dialog.accept_button.text() == f"Accept {len(expected)}"
    dialog.rule.setText("distnce >= 0.6")  # a typo: said at once, nothing can be accepted
    assert "unknown name 'distnce' (did you mean distance?)" in dialog.count.text()
    assert not dialog.accept_button.isEnabled() and state.rule_preview is None
    dialog.rule.setText(f"distance >= {t}")
    dialog.best.setChecked(True)  # one per face at most
    faces = {c.face_id for c in cands if c.id in expected}
    assert state.rule_preview.count == len(faces)
    dialog.best.setChecked(False)
    dialog.accept_button.click()
    decided = {c.id: c.decision for c in ws.candidates()}
    assert {i for i, d in decided.items() if d == "accepted"} == expected
    assert decided[rejected.id] == "rejected"
    assert state.message.startswith(f"Accepted {len(expected)} candidate")
    assert "Ctrl+Z undoes them all" in state.message
    assert dialog.count.text().startswith("Would accept 0 candidates")  # counted again
    assert not dialog.accept_button.isEnabled()
    # One Ctrl+Z in the window brings the whole group back; the next, the single decision.
    dialog.close()
    cur.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is cur)
    qtbot.keyClick(cur, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    decided = {c.id: c.decision for c in ws.candidates()}
    assert decided[rejected.id] == "rejected"
    assert all(d == "pending" for i, d in decided.items() if i != rejected.id)
    assert state.message == (f"Undone: accept: distance >= {t} ({len(expected)} candidate"
                             f"{'s' * (len(expected) != 1)} back to their earlier decision).")
    # The dialog's own Undo is the same action.
    dialog = cur.open_accept_rule()
    assert dialog.rule.text() == f"distance >= {t}"
    assert state.rule_preview.count == len(expected)
    dialog.override.setChecked(True)  # the rejected one may be accepted too
    assert state.rule_preview.count == len(expected) + (rejected.distance >= t)
    dialog.accept_button.click()
    assert len(ws.candidates(decision="accepted")) == len(expected) + (rejected.distance >= t)
    dialog.undo_button.click()
    assert {c.id: c.decision for c in ws.candidates()} == decided
    dialog.undo_button.click()
    assert all(c.decision == "pending" for c in ws.candidates()) and state.message == "Undone."
    dialog.close()
    assert state.rule == ""  # closed: no more counting on every decision
    QThreadPool.globalInstance().waitForDone(30000)
    cur.close()


def test_export_dialog_refuses_a_bad_place_before_any_work(qtbot, window, engine, tmp_path,
                                                           genki_test, monkeypatch):
    from studio.core.workspace import export

    path, _ = _batch(tmp_path, engine, genki_test, n=1)
    cur = window.open_workspace(str(path))
    qtbot.addWidget(cur)
    for c in cur.ws.candidates():
        cur.ws.decide(c.id, "accepted")
    started = []
    monkeypatch.setattr(export, "export_batch", lambda *a, **k: started.append(a))
    monkeypatch.setattr(export.IdentityGate, "check", lambda *a: started.append(a))
    QThreadPool.globalInstance().waitForDone(30000)
    dialog = cur.open_export()
    qtbot.addWidget(dialog)
    before = sorted(p.name for p in tmp_path.iterdir())
    dialog.mturk.setChecked(False)
    cases = [("/proc/studio-x", "", "cannot write the export folder"),
             (str(tmp_path / "photos"), "", "already exists"),
             (str(tmp_path / "new"), None, "A base URL is needed for mturk.csv")]
    for folder, url, said in cases:
        dialog.out_dir.setText(folder)
        if url is None:  # MTurk asked for, with no base URL
            dialog.mturk.setChecked(True)
        dialog.export_button.click()
        # Said at once, in the dialog, with no worker started.
        assert said in dialog.result.text() and "c62828" in dialog.result.text(), said
        assert dialog.export_button.isEnabled() and dialog.report is None
    QThreadPool.globalInstance().waitForDone(30000)
    qtbot.wait(50)
    assert started == [] and dialog.report is None
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    dialog.close()
    cur.close()


def test_crowd_report_window_shows_the_report_figures(qtbot, window, tmp_path):
    from test_crowd import Study

    study = Study(40, 10, {"gan": 0.8, "3d": 0.7}, seed=5)
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
    assert points[1].data["x"][0] == pytest.approx(gan.deidentified)
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


# -- the state objects: every change announced once, no change not at all -----------------

def _emits(qtbot, signal, action, times: int = 1) -> None:
    """``action()`` emits ``signal`` exactly ``times`` times (synchronously)."""
    seen = []
    signal.connect(lambda *args: seen.append(args))
    action()
    qtbot.wait(0)
    assert len(seen) == times, f"{len(seen)} emissions, expected {times}"


def _face(**attributes):
    from types import SimpleNamespace

    from studio.core.analysis.attributes import Attributes

    return SimpleNamespace(attributes=replace(Attributes.defaults(), **attributes))


def _comparison(face, distance: float | None):
    from types import SimpleNamespace

    return SimpleNamespace(original=face, distance=distance, surrogate=None, smile_kept=None)


def test_studio_state_setters_announce_changes_once(qtbot):
    from types import SimpleNamespace

    from studio.core.generator.latent import mix, z_for_seed

    state = StudioState()
    _emits(qtbot, state.targets_changed, lambda: state.set_targets(joy=0.9))
    _emits(qtbot, state.targets_changed, lambda: state.set_targets(joy=0.9), 0)
    _emits(qtbot, state.identity_changed, lambda: state.set_identity(seed_a=7, mix=0.25))
    _emits(qtbot, state.identity_changed, lambda: state.set_identity(seed_a=7), 0)
    _emits(qtbot, state.options3d_changed, lambda: state.set_options3d(mode3d="shaded"))
    _emits(qtbot, state.options3d_changed, lambda: state.set_options3d(mode3d="shaded"), 0)
    _emits(qtbot, state.timings_changed, lambda: state.set_timing(analysis=12.0))
    _emits(qtbot, state.timings_changed, lambda: state.set_timing(analysis=12.0), 0)
    with pytest.raises(TypeError):
        state.set_identity(seed_c=3)
    for mode in ("slerp", "linear"):
        state.set_identity(mode=mode)
        expected = mix(z_for_seed(7), z_for_seed(2), 0.25, mode)
        np.testing.assert_array_equal(state.z(), expected)
        assert state.z().dtype == np.float32

    faces = [_face(joy=0.2), _face(joy=0.8)]
    rgb = np.zeros((20, 30, 3), np.uint8)
    image = SimpleNamespace(rgb=rgb)
    analysis = SimpleNamespace(faces=faces)
    for signal in (state.image_changed, state.analysis_changed, state.face_changed,
                   state.compared.face_changed):
        _emits(qtbot, signal, lambda: state.set_image("a.png", image, analysis))
        state.set_image(None, None, None)
    state.set_image("a.png", image, analysis)
    assert state.face is faces[0] and state.compared.face is faces[0]
    assert state.display[0] is rgb  # plain data: the widget makes the pixmap
    _emits(qtbot, state.image_changed, lambda: state.set_image("a.png", image, analysis), 0)
    _emits(qtbot, state.face_changed, lambda: state.set_face(1))
    assert state.compared.face is faces[1]
    _emits(qtbot, state.face_changed, lambda: state.set_face(1), 0)
    _emits(qtbot, state.compared.face_changed, lambda: state.set_face(0))


def test_comparison_state_setters_announce_changes_once(qtbot):
    from studio.ui.comparison_state import HISTORY, ComparisonState

    state = ComparisonState()
    face, other = _face(), _face()
    _emits(qtbot, state.face_changed, lambda: state.set_face(face))
    _emits(qtbot, state.face_changed, lambda: state.set_face(face), 0)
    near, far = _comparison(face, 0.3), _comparison(face, 0.8)
    _emits(qtbot, state.comparison_changed, lambda: state.set_comparison(GAN, near))
    _emits(qtbot, state.comparison_changed, lambda: state.set_comparison(GAN, near), 0)
    _emits(qtbot, state.comparison_changed, lambda: state.set_comparison(MORPHABLE, far))
    _emits(qtbot, state.comparison_changed, lambda: state.set_comparison(MORPHABLE, far), 0)
    assert state.distances == {GAN: [0.3], MORPHABLE: [0.8]}
    # Another face: its measures are gone, and the panels hear of each method's.
    _emits(qtbot, state.comparison_changed, lambda: state.set_face(other), 2)
    assert state.comparison(GAN) is None and state.comparison(MORPHABLE) is None
    _emits(qtbot, state.comparison_changed, lambda: state.set_face(face), 0)  # none to clear
    state.set_comparison(MORPHABLE, far)
    _emits(qtbot, state.comparison_changed, lambda: state.set_face(other))
    for i in range(HISTORY + 5):
        state.set_comparison(GAN, _comparison(face, i / 100))
    history = state.history(GAN)
    assert len(history) == HISTORY and history[-1] == (HISTORY + 4) / 100
    # A stored candidate is shown, not added to the live history.
    before = dict(state.distances)
    _emits(qtbot, state.comparison_changed, lambda: state.show(other, {MORPHABLE: far}), 2)
    _emits(qtbot, state.face_changed, lambda: state.show(other, {MORPHABLE: far}), 0)
    assert state.face is other and state.distances == before
    assert state.comparisons == {GAN: None, MORPHABLE: far}


def test_comparison_state_announces_one_signal_with_the_method_key(qtbot):
    """One signal for every method, told which: a method the window has never heard of
    is measured like the others."""
    from studio.ui.comparison_state import NO_HISTORY, ComparisonState

    state = ComparisonState()
    face = _face()
    state.set_face(face)
    comp = _comparison(face, 0.9)
    with qtbot.waitSignal(state.comparison_changed, timeout=1000) as blocker:
        state.set_comparison("toy", comp)
    assert blocker.args == ["toy"]
    assert state.comparison("toy") is comp and state.history("toy") == [0.9]
    assert state.comparison(GAN) is None and state.history(GAN) is NO_HISTORY
    told: list[str] = []
    state.comparison_changed.connect(told.append)
    state.show(_face(), {GAN: comp})  # a stored GAN candidate: the toy's measure is gone
    assert told == ["toy", GAN]


def test_curation_state_setters_announce_changes_once(qtbot):
    from studio.ui.curation_state import CurationState

    state = CurationState()
    _emits(qtbot, state.filter_changed, lambda: state.set_filter("all"))
    _emits(qtbot, state.filter_changed, lambda: state.set_filter("all"), 0)
    _emits(qtbot, state.items_changed, lambda: state.set_items([1, 2], ["a", "b"]))
    _emits(qtbot, state.items_changed, lambda: state.set_items([1, 2], ["a", "b"]), 0)
    face, crop = object(), np.zeros((4, 4, 3), np.uint8)
    _emits(qtbot, state.item_changed, lambda: state.set_item(0, face, crop))
    _emits(qtbot, state.item_changed, lambda: state.set_item(0, face, crop), 0)
    _emits(qtbot, state.candidates_changed, lambda: state.set_candidates(["gan", "3d"]))
    _emits(qtbot, state.candidates_changed, lambda: state.set_candidates(["gan", "3d"]), 0)
    _emits(qtbot, state.current_changed, lambda: state.set_current(1))
    _emits(qtbot, state.current_changed, lambda: state.set_current(1), 0)
    assert state.candidate == "3d"
    _emits(qtbot, state.revealed_changed, lambda: state.set_revealed(True))
    _emits(qtbot, state.revealed_changed, lambda: state.set_revealed(True), 0)
    _emits(qtbot, state.revealed_changed, lambda: state.set_item(1, face, crop))  # blurred
    _emits(qtbot, state.message_changed, lambda: state.set_message("Undone."))
    _emits(qtbot, state.message_changed, lambda: state.set_message("Undone."), 0)
    _emits(qtbot, state.message_changed, lambda: state.set_message("Undone.", error=True))


def test_evaluation_and_crowd_states_announce_changes_once(qtbot):
    from studio.ui.crowd_state import CrowdReportState
    from studio.ui.evaluation_state import EvaluationState

    ev = EvaluationState()
    _emits(qtbot, ev.options_changed, lambda: ev.set_options(folder="/x", limit=5))
    _emits(qtbot, ev.options_changed, lambda: ev.set_options(folder="/x", limit=5), 0)
    _emits(qtbot, ev.options_changed, lambda: ev.set_options(families=["gan"]))
    _emits(qtbot, ev.options_changed, lambda: ev.set_options(families=("gan",)), 0)
    for signal, setter, value in ((ev.running_changed, ev.set_running, True),
                                  (ev.cancelled_changed, ev.set_cancelled, True),
                                  (ev.dataset_changed, ev.set_dataset, "genki"),
                                  (ev.message_changed, ev.set_message, "Evaluating …"),
                                  (ev.result_changed, ev.set_result, object())):
        _emits(qtbot, signal, lambda s=setter, v=value: s(v))
        _emits(qtbot, signal, lambda s=setter, v=value: s(v), 0)
    _emits(qtbot, ev.progress_changed, lambda: ev.set_progress(1, 4))
    _emits(qtbot, ev.progress_changed, lambda: ev.set_progress(1, 4), 0)

    crowd = CrowdReportState()
    _emits(qtbot, crowd.paths_changed, lambda: crowd.set_paths(results="r.csv"))
    _emits(qtbot, crowd.paths_changed, lambda: crowd.set_paths(results="r.csv"), 0)
    analysis, figures = object(), {}
    _emits(qtbot, crowd.result_changed, lambda: crowd.set_result(analysis, figures))
    _emits(qtbot, crowd.result_changed, lambda: crowd.set_result(analysis, figures), 0)
    for signal, setter, value in ((crowd.running_changed, crowd.set_running, True),
                                  (crowd.message_changed, crowd.set_message, "Analysing …")):
        _emits(qtbot, signal, lambda s=setter, v=value: s(v))
        _emits(qtbot, signal, lambda s=setter, v=value: s(v), 0)


def test_controller_routes_seed_and_timing_changes_through_the_state(qtbot):
    from types import SimpleNamespace

    state = StudioState()
    controller = Controller(state, engine_factory=lambda: None)  # no models: none needed
    analysis = SimpleNamespace(faces=[], timings_ms={"analysis": 42.0}, notes=())
    image = SimpleNamespace(rgb=np.zeros((8, 8, 3), np.uint8))
    seeds, timings = [], []
    state.identity_changed.connect(lambda: seeds.append(state.seed_a))
    state.timings_changed.connect(lambda: timings.append(dict(state.timings)))
    controller._on_opened(1, ("a.png", image, analysis, (image.rgb, 1.0)))
    assert seeds == [state.seed_a] and timings == [{"analysis": 42.0}]
    controller.new_identity()
    assert len(seeds) == 2 and seeds[-1] == state.seed_a
    state.set_identity(locked=True)
    seed = state.seed_a
    controller._on_opened(2, ("b.png", image, SimpleNamespace(faces=[], timings_ms={
        "analysis": 43.0}, notes=()), (image.rgb, 1.0)))
    controller.new_identity()
    assert state.seed_a == seed and timings[-1] == {"analysis": 43.0}
    controller.stop()


def test_curation_window_has_its_own_small_state(qtbot, tmp_path, monkeypatch):
    from studio.core.workspace.store import Workspace
    from studio.ui.comparison_state import ComparisonState
    from studio.ui.curation import CurationWindow
    from studio.ui.curation_state import CurationState

    made = []
    original_init = StudioState.__init__
    monkeypatch.setattr(StudioState, "__init__",
                        lambda self: made.append(self) or original_init(self))
    with Workspace(tmp_path / "empty.studio", create=True) as ws:
        cur = CurationWindow(ws)
        qtbot.addWidget(cur)
        assert made == []
        assert isinstance(cur.state, CurationState)
        assert not any(isinstance(v, StudioState) for v in vars(cur).values())
        for panel in (cur.expression, cur.identity):
            assert type(panel.state) is ComparisonState and panel.state is cur.state.compared
        assert cur.state.face_ids == [] and "Nothing to show" in cur.message.text()
        cur.filter.setCurrentText("all")  # the widget writes the state
        assert cur.state.filter == "all"
        cur.state.set_filter("rejected")  # the state drives the widget
        assert cur.filter.currentText() == "rejected"
        cur.close()


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
