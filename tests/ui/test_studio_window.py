"""The studio window on real faces: open, analyse, draw, measure, save; the 3D panel; its
state and controller announce each change once."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QSettings, Qt, QThreadPool

from studio.core.analysis.attributes import SPEC
from studio.core.generator.choices import BY_KEY, DEFAULT
from studio.core.surrogates.registry import GAN, MORPHABLE
from studio.ui.controller import Controller
from studio.ui.main_window import MainWindow
from studio.ui.state import StudioState
from studio.ui.workers import LatestOnly

pytestmark = pytest.mark.data


def test_open_real_face_shows_attributes(qtbot, window, utk_face_path, analyzer, open_and_wait):
    open_and_wait(window, utk_face_path)
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
def test_each_slider_draws_a_new_surrogate(qtbot, window, utk_face_path, name, value,
                                           open_and_wait):
    open_and_wait(window, utk_face_path)
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


def test_choose_a_face_in_a_group_photo(qtbot, window, tmp_path, group_photo, open_and_wait):
    path = tmp_path / "group.png"
    Image.fromarray(group_photo).save(path)
    open_and_wait(window, path)
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
                                                              utk_face_path, open_and_wait):
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
    open_and_wait(window, utk_face_path)
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


def test_save_surrogate_png_has_no_original_data(qtbot, window, tmp_path, utk_face_path,
                                                 open_and_wait):
    open_and_wait(window, utk_face_path)
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


def test_match_original_and_identity_controls(qtbot, window, utk_face_path, open_and_wait):
    open_and_wait(window, utk_face_path)
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
                                             group_photo, open_and_wait):
    import shutil

    from PySide6.QtCore import QMimeData, QPoint, QUrl
    from PySide6.QtGui import QDropEvent

    shutil.copy(utk_face_path, tmp_path / "a_face.jpg")
    Image.fromarray(group_photo).save(tmp_path / "b_group.png")
    (tmp_path / "c_notes.txt").write_text("ignored: not an image suffix")
    open_and_wait(window, tmp_path / "a_face.jpg")
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
    recent = window.recent.paths()
    assert recent[0] == str(tmp_path / "b_group.png") and str(tmp_path / "a_face.jpg") in recent


def wait_3d(qtbot, win, after: int) -> None:
    qtbot.waitUntil(lambda: win.surrogate3d.generation > after, timeout=30000)
    lane = win.controller.lanes[MORPHABLE]
    qtbot.waitUntil(lambda: not lane.jobs.busy and not lane.measure_jobs.busy, timeout=30000)


def test_3d_panel_renders_orbits_and_is_measured(qtbot, window, utk_face_path, open_and_wait):
    open_and_wait(window, utk_face_path)
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


def test_joy_slider_moves_the_3d_smile(qtbot, window, utk_face_path, open_and_wait):
    # A fixed identity: about 1 joy edit in 25 misses (studio evaluate-3d measures the rate).
    window.state.set_identity(seed_a=11, locked=True)
    open_and_wait(window, utk_face_path)
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


def test_save_latent_walk_writes_filmstrip_and_gif(qtbot, window, utk_face_path, tmp_path,
                                                   open_and_wait):
    open_and_wait(window, utk_face_path)
    window.save_walk(str(tmp_path / "demo_walk.png"))
    qtbot.waitUntil(lambda: "demo_walk.gif" in window.last_message[1], timeout=30000)
    with Image.open(tmp_path / "demo_walk.png") as strip, \
            Image.open(tmp_path / "demo_walk.gif") as gif:
        assert strip.size[0] > 8 * strip.size[1] and gif.n_frames == 16


def test_generator_menu_switches_the_drawing_model(qtbot, engine, tmp_path, utk_face_path,
                                                   open_and_wait):
    state = StudioState()
    controller = Controller(state, engine_factory=lambda: engine)
    win = MainWindow(state, controller,
                     QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(win)
    controller.load_models()
    qtbot.waitUntil(lambda: controller.engine is not None, timeout=30000)
    try:
        open_and_wait(win, utk_face_path)
        acts = win.generator_actions
        assert acts[DEFAULT.key].isChecked() and not acts["thesis"].isChecked()
        before, shown = state.surrogate.image.copy(), win.surrogate.generation
        acts["thesis"].trigger()
        qtbot.waitUntil(lambda: state.generator_key == "thesis"
                        and win.surrogate.generation > shown and controller.idle,
                        timeout=30000)
        assert acts["thesis"].isChecked() and not acts[DEFAULT.key].isChecked()
        assert engine.generator.path == BY_KEY["thesis"].path
        assert "BEGAN-CS (thesis)" in win.last_message[1]
        assert not np.array_equal(state.surrogate.image, before)  # same z, other model
    finally:
        engine.switch_generator(None)  # the session's engine is shared
        controller.stop()
        QThreadPool.globalInstance().waitForDone(30000)
    assert engine.generator.path == DEFAULT.path


# -- the state objects: every change announced once, no change not at all -----------------

def _face(**attributes):
    from types import SimpleNamespace

    from studio.core.analysis.attributes import Attributes

    return SimpleNamespace(attributes=replace(Attributes.defaults(), **attributes))


def _comparison(face, distance: float | None):
    from types import SimpleNamespace

    return SimpleNamespace(original=face, distance=distance, surrogate=None, smile_kept=None)


def test_studio_state_setters_announce_changes_once(qtbot, emits):
    from types import SimpleNamespace

    from studio.core.generator.latent import mix, z_for_seed

    state = StudioState()
    emits(state.targets_changed, lambda: state.set_targets(joy=0.9))
    emits(state.targets_changed, lambda: state.set_targets(joy=0.9), 0)
    emits(state.identity_changed, lambda: state.set_identity(seed_a=7, mix=0.25))
    emits(state.identity_changed, lambda: state.set_identity(seed_a=7), 0)
    emits(state.options3d_changed, lambda: state.set_options3d(mode3d="shaded"))
    emits(state.options3d_changed, lambda: state.set_options3d(mode3d="shaded"), 0)
    emits(state.timings_changed, lambda: state.set_timing(analysis=12.0))
    emits(state.timings_changed, lambda: state.set_timing(analysis=12.0), 0)
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
        emits(signal, lambda: state.set_image("a.png", image, analysis))
        state.set_image(None, None, None)
    state.set_image("a.png", image, analysis)
    assert state.face is faces[0] and state.compared.face is faces[0]
    assert state.display[0] is rgb  # plain data: the widget makes the pixmap
    emits(state.image_changed, lambda: state.set_image("a.png", image, analysis), 0)
    emits(state.face_changed, lambda: state.set_face(1))
    assert state.compared.face is faces[1]
    emits(state.face_changed, lambda: state.set_face(1), 0)
    emits(state.compared.face_changed, lambda: state.set_face(0))


def test_comparison_state_setters_announce_changes_once(qtbot, emits):
    from studio.ui.comparison_state import HISTORY, ComparisonState

    state = ComparisonState()
    face, other = _face(), _face()
    emits(state.face_changed, lambda: state.set_face(face))
    emits(state.face_changed, lambda: state.set_face(face), 0)
    near, far = _comparison(face, 0.3), _comparison(face, 0.8)
    emits(state.comparison_changed, lambda: state.set_comparison(GAN, near))
    emits(state.comparison_changed, lambda: state.set_comparison(GAN, near), 0)
    emits(state.comparison_changed, lambda: state.set_comparison(MORPHABLE, far))
    emits(state.comparison_changed, lambda: state.set_comparison(MORPHABLE, far), 0)
    assert state.distances == {GAN: [0.3], MORPHABLE: [0.8]}
    # Another face: its measures are gone, and the panels hear of each method's.
    emits(state.comparison_changed, lambda: state.set_face(other), 2)
    assert state.comparison(GAN) is None and state.comparison(MORPHABLE) is None
    emits(state.comparison_changed, lambda: state.set_face(face), 0)  # none to clear
    state.set_comparison(MORPHABLE, far)
    emits(state.comparison_changed, lambda: state.set_face(other))
    for i in range(HISTORY + 5):
        state.set_comparison(GAN, _comparison(face, i / 100))
    history = state.history(GAN)
    assert len(history) == HISTORY and history[-1] == (HISTORY + 4) / 100
    # A stored candidate is shown, not added to the live history.
    before = dict(state.distances)
    emits(state.comparison_changed, lambda: state.show(other, {MORPHABLE: far}), 2)
    emits(state.face_changed, lambda: state.show(other, {MORPHABLE: far}), 0)
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
