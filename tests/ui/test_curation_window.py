"""The curation window on real workspaces: review by keyboard, a damaged workspace, moved
originals, bulk accepts, the export dialog; its own small state."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThreadPool

from studio.ui.state import StudioState

pytestmark = pytest.mark.data


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
        qtbot, window, engine, tmp_path, genki_test, utk_face_path, open_and_wait):
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
    open_and_wait(window, utk_face_path)
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


def test_curation_state_setters_announce_changes_once(qtbot, emits):
    from studio.ui.curation_state import CurationState

    state = CurationState()
    emits(state.filter_changed, lambda: state.set_filter("all"))
    emits(state.filter_changed, lambda: state.set_filter("all"), 0)
    emits(state.items_changed, lambda: state.set_items([1, 2], ["a", "b"]))
    emits(state.items_changed, lambda: state.set_items([1, 2], ["a", "b"]), 0)
    face, crop = object(), np.zeros((4, 4, 3), np.uint8)
    emits(state.item_changed, lambda: state.set_item(0, face, crop))
    emits(state.item_changed, lambda: state.set_item(0, face, crop), 0)
    emits(state.candidates_changed, lambda: state.set_candidates(["gan", "3d"]))
    emits(state.candidates_changed, lambda: state.set_candidates(["gan", "3d"]), 0)
    emits(state.current_changed, lambda: state.set_current(1))
    emits(state.current_changed, lambda: state.set_current(1), 0)
    assert state.candidate == "3d"
    emits(state.revealed_changed, lambda: state.set_revealed(True))
    emits(state.revealed_changed, lambda: state.set_revealed(True), 0)
    emits(state.revealed_changed, lambda: state.set_item(1, face, crop))  # blurred
    emits(state.message_changed, lambda: state.set_message("Undone."))
    emits(state.message_changed, lambda: state.set_message("Undone."), 0)
    emits(state.message_changed, lambda: state.set_message("Undone.", error=True))


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
