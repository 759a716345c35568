"""The studio window's in-context view (issue 15): the photo with the surrogate faces in
place, driven by the sliders, measured by the panels and saved at the photo's size."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction

from studio.core.analysis.identity import SAME_PERSON_THRESHOLD
from studio.core.surrogates.registry import IN_CONTEXT

pytestmark = pytest.mark.data


def _shown(view) -> tuple[np.ndarray, tuple[int, int]]:
    """The pixels the photo view paints and the photo size they stand for."""
    pixmap, scale = view.shown_pixmap()
    img = pixmap.toImage().convertToFormat(pixmap.toImage().Format.Format_RGB888)
    h, w = img.height(), img.width()
    rows = np.frombuffer(img.constBits(), np.uint8, img.sizeInBytes()).reshape(h, -1)
    return rows[:, : 3 * w].reshape(h, w, 3).copy(), (round(w / scale), round(h / scale))


def _show_context(qtbot, win) -> None:
    with qtbot.waitSignal(win.state.context_changed, timeout=60000):
        win.context_action.trigger()
    assert win.state.context_shown and win.state.context is not None


def _measured(qtbot, win):
    """The in-context photo on screen, once the panels show its measure."""
    state = win.state
    lane = win.controller.lanes[IN_CONTEXT]
    qtbot.waitUntil(lambda: state.compared.comparison(IN_CONTEXT) is not None
                    and not lane.busy, timeout=60000)
    return state.context, state.compared.comparison(IN_CONTEXT)


def _press_c(qtbot, win) -> None:
    win.activateWindow()
    qtbot.waitUntil(win.isActiveWindow, timeout=5000)
    qtbot.keyClick(win.photo, Qt.Key.Key_C)


def test_toggle_slider_measure_and_save_in_context(qtbot, window, utk_face_path,
                                                   tmp_path, open_and_wait):
    win, state = window, window.state
    open_and_wait(win, utk_face_path)
    state.set_identity(seed_a=1)  # a photo opens with a random identity: one fixed here
    photo_before = state.image.rgb.copy()
    original, size = _shown(win.photo)
    assert win.photo.shown == "original" and size == (state.image.width, state.image.height)
    assert "In context" in win.photo_bar.caption.text()  # the bar says how to get there

    # The action: the same view, now the photo with the new face in it, at the photo's size.
    _show_context(qtbot, win)
    first = state.context
    assert win.photo.shown == "in_context" and win.photo_bar.toggle.isChecked()
    pixels, size = _shown(win.photo)
    assert size == (state.image.width, state.image.height) and pixels.shape == original.shape
    changed = first.result.changed
    assert 0.05 < changed.mean() < 0.8  # the face, not the whole photo
    assert np.abs(pixels.astype(int) - original).max(axis=2)[changed].mean() > 10
    np.testing.assert_array_equal(pixels[~changed], original[~changed])  # the rest is kept
    assert "1 face replaced" in win.photo_bar.caption.text()
    assert first.order == (0,) and first.request.seed == state.seed_a

    # The shortcut: back to the original and again to the same in-context photo (not remade).
    assert win.context_action.shortcut().toString() == "C"
    _press_c(qtbot, win)
    assert not state.context_shown and win.photo.shown == "original"
    np.testing.assert_array_equal(_shown(win.photo)[0], original)
    _press_c(qtbot, win)
    assert state.context_shown and win.photo.shown == "in_context" and state.context is first

    # The joy slider re-renders the face live; both ends are measured by the panels.
    joys = {}
    for value in (95, 5):
        before = state.context
        with qtbot.waitSignal(state.context_changed, timeout=60000):
            win.sliders.sliders["joy"].setValue(value)
        photo, comp = _measured(qtbot, win)
        assert photo is not before and photo.request.targets.joy == pytest.approx(value / 100)
        assert not np.array_equal(photo.result.image, before.result.image)
        np.testing.assert_array_equal(_shown(win.photo)[0], photo.result.image)  # on screen
        assert comp.original is state.face and comp.surrogate is not None
        assert comp.distance is not None
        assert f"distance {comp.distance:.2f}" in win.identity.verdicts[IN_CONTEXT].text()
        assert win.identity.verdicts[IN_CONTEXT].text().startswith("In context: ")
        assert state.compared.distances[IN_CONTEXT][-1] == comp.distance
        assert win.expression.table.item(0, 5).text() == f"{comp.surrogate.attributes.joy:.2f}"
        joys[value] = comp.surrogate.attributes.joy
    assert joys[95] > joys[5] + 0.2  # the requested smile is seen in the photo
    # A new identity in the photo: the measured distance stays at or above the threshold.
    assert state.compared.comparison(IN_CONTEXT).distance >= SAME_PERSON_THRESHOLD - 0.1
    np.testing.assert_array_equal(state.image.rgb, photo_before)  # the original untouched

    # Save: the in-context photo at the photo's size, a fresh PNG without metadata.
    assert "in-context" in win.save_action.text()
    out = win.save_surrogate(str(tmp_path / "in_context_0001.png"))
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (state.image.width, state.image.height)
        assert not img.info.get("exif") and not img.getexif()
        assert set(img.info) <= {"dpi", "gamma"}
        np.testing.assert_array_equal(np.asarray(img.convert("RGB")),
                                      state.context.result.image)
    # Back in the original view, Save writes the surrogate face as before.
    win.context_action.trigger()
    assert "in-context" not in win.save_action.text()
    with Image.open(win.save_surrogate(str(tmp_path / "surrogate_0002.png"))) as img:
        assert img.size == (256, 256)


def test_group_photo_every_face_replaced_the_chosen_one_measured(
        qtbot, window, tmp_path, group_photo, open_and_wait):
    win, state = window, window.state
    path = tmp_path / "group.png"
    Image.fromarray(group_photo).save(path)
    open_and_wait(win, path)
    faces = state.analysis.faces
    assert len(faces) == 2
    qtbot.mouseClick(win.photo.viewport(), Qt.MouseButton.LeftButton,
                     pos=win.photo.face_center_in_view(1))
    assert state.face is faces[1]
    _show_context(qtbot, win)
    photo, comp = _measured(qtbot, win)
    assert photo.face is faces[1] and photo.order == (1, 0)
    assert photo.result.replaced == 2
    for face in faces:  # every face of the photo is replaced, not only the chosen one
        x0, y0, x1, y1 = (int(v) for v in face.box)
        assert photo.result.changed[y0:y1, x0:x1].mean() > 0.5
    assert comp.original is faces[1] and comp.distance is not None
    # A result made for another face of the photo is not shown as this face's.
    state.set_context(replace(photo, face=faces[0]))
    assert state.context is photo

    # Save never writes over the original photo.
    original_bytes = path.read_bytes()
    assert win.save_surrogate(str(path)) is None
    assert win.last_message[0] == "error" and "original" in win.last_message[1]
    assert path.read_bytes() == original_bytes


def test_a_limited_pose_edit_is_said(qtbot, window, utk_face_path, open_and_wait):
    win, state = window, window.state
    open_and_wait(win, utk_face_path)
    _show_context(qtbot, win)
    yaw = state.face.attributes.yaw
    with qtbot.waitSignal(state.context_changed, timeout=60000):
        win.sliders.sliders["yaw"].setValue(round(yaw) + 40)
    notes = state.context.notes()
    assert any("limited" in n for n in notes)
    assert "limited" in win.photo_bar.caption.text()
    assert "limited" in win.last_message[1] and win.last_message[0] == "info"
    # Back within the limit: the note goes.
    with qtbot.waitSignal(state.context_changed, timeout=60000):
        win.sliders.sliders["yaw"].setValue(round(yaw) + 5)
    assert not any("limited" in n for n in state.context.notes())
    assert "limited" not in win.photo_bar.caption.text()


def test_in_context_shortcut_is_unique_and_in_the_view_menu(window):
    keys = [a.shortcut().toString() for a in window.findChildren(QAction)
            if not a.shortcut().isEmpty()]
    assert keys.count("C") == 1
    view_menu = next(m for m in window.menuBar().actions() if m.text() == "&View").menu()
    assert window.context_action in view_menu.actions()
    assert window.context_action.isCheckable()


def test_state_announces_the_view_and_drops_a_stale_photo(qtbot, emits):
    from types import SimpleNamespace

    from studio.ui.state import ContextPhoto, StudioState

    state = StudioState()
    emits(state.context_view_changed, lambda: state.set_context_shown(True))
    emits(state.context_view_changed, lambda: state.set_context_shown(True), 0)
    face, other = SimpleNamespace(attributes=None), SimpleNamespace(attributes=None)
    image = SimpleNamespace(rgb=np.zeros((4, 4, 3), np.uint8))
    state.image, state.analysis, state.face_index = image, SimpleNamespace(faces=[face]), 0
    result = SimpleNamespace(faces=[], notes=("face 1: limited",))
    photo = ContextPhoto(result, (image.rgb, 1.0), image, face, None, 5.0, (0,))
    emits(state.context_changed, lambda: state.set_context(photo))
    assert state.context is photo and state.timings["context"] == 5.0
    emits(state.context_changed, lambda: state.set_context(replace(photo, face=other)),
           0)
    emits(state.context_changed, lambda: state.set_context(None))
    assert replace(photo, order=(2, 0, 1)).notes() == ["face 3: limited"]


def test_window_marks_faces_it_will_blur_or_mask_and_covers_them(qtbot, window,
                                                                  utk_face, tmp_path,
                                                                  open_and_wait):
    """Issue 25: every face found is drawn; one that cannot be replaced is marked with what
    will be done to it, and the in-context photo changes it too."""
    from studio.core.datasets import utk_split, utkface
    from studio.core.surrogates.unfitted import untouched

    small = np.asarray(Image.open(utk_split(utkface(), "test")[101].path).resize((28, 28)))
    canvas = np.full((300, 460, 3), 150, np.uint8)
    canvas[50:250, 20:220] = utk_face
    canvas[120:148, 350:378] = small
    path = tmp_path / "two.png"
    Image.fromarray(canvas).save(path)
    open_and_wait(window, path)
    state = window.state
    found = [f.box for f in state.analysis.faces] + [u.box for u in state.analysis.unfitted]
    assert len(found) == 2
    tips = [item.toolTip() for item in window.photo.scene().items()]
    assert any("will be blurred" in t or "will be masked" in t for t in tips), tips
    _show_context(qtbot, window)
    qtbot.waitUntil(lambda: not window.controller.lanes[IN_CONTEXT].jobs.busy, timeout=60000)
    out = state.context.result.image
    assert not untouched(canvas, out, (350 + 5, 120 + 5, 378 - 5, 148 - 3))
