"""The studio window's commands: its actions, menus (File with Open recent, View, Surrogate
with the Generator choices and the Privacy presets, Help) and toolbar, the recent photos
kept in the settings, and the About box. The window owns the slots; this module lays them out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QMenu, QMessageBox, QWidget

MAX_RECENT = 10


def make_action(parent: QWidget, text: str, slot, shortcut=None, tip: str = "") -> QAction:
    act = QAction(text, parent)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    act.setStatusTip(tip)
    act.triggered.connect(slot)
    return act


class RecentPhotos:
    """File > Open recent: the last photos opened, newest first, kept in the settings."""

    def __init__(self, settings: QSettings, menu: QMenu, open_path) -> None:
        self.settings, self.menu, self.open_path = settings, menu, open_path
        self.refresh()

    def paths(self) -> list[str]:
        value = self.settings.value("recent", [])
        if isinstance(value, str):
            value = [value]
        return [str(v) for v in (value or [])]

    def add(self, path: str) -> None:
        recent = [p for p in self.paths() if p != path]
        self.settings.setValue("recent", [path, *recent][:MAX_RECENT])
        self.refresh()

    def refresh(self) -> None:
        self.menu.clear()
        for path in self.paths():
            self.menu.addAction(make_action(self.menu, Path(path).name,
                                            lambda _=False, p=path: self.open_path(p),
                                            tip=path))
        self.menu.setEnabled(bool(self.paths()))


def build_menus(win) -> None:
    """The studio window's actions (kept on ``win``: ``open_action``, ``save_action``,
    ``generator_actions``, ...), its menu bar, toolbar and recent photos (``win.recent``)."""

    def action(text: str, slot, shortcut=None, tip: str = "") -> QAction:
        return make_action(win, text, slot, shortcut, tip)

    controller = win.controller
    win.open_action = action("&Open photo…", win.open_dialog, QKeySequence.Open,
                             "Open a face photo")
    win.demo_action = action("Open &demo face", win.open_demo, None)
    win.prev_action = action("&Previous in folder", lambda: controller.step_in_folder(-1),
                             "Ctrl+Left")
    win.next_action = action("&Next in folder", lambda: controller.step_in_folder(1),
                             "Ctrl+Right")
    win.save_action = action("&Save surrogate as PNG…", win.save_surrogate, QKeySequence.Save)
    win.save_action.setEnabled(False)
    win.quit_action = action("&Quit", win.close, QKeySequence.Quit)
    win.new_id_action = action("&New identity", controller.new_identity, "Ctrl+N")
    win.match_action = action("&Match original", controller.match_original, "Ctrl+M")
    win.about_action = action("&About Surrogate Studio", lambda: show_about(win))

    bar = win.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.addAction(win.open_action)
    file_menu.addAction(win.demo_action)
    recent_menu = file_menu.addMenu("Open &recent")
    file_menu.addSeparator()
    file_menu.addAction(win.prev_action)
    file_menu.addAction(win.next_action)
    file_menu.addSeparator()
    file_menu.addAction(win.save_action)
    file_menu.addAction(action("Curate a &workspace…", win.open_workspace, None,
                               "Review the candidates of a `studio batch` run"))
    file_menu.addAction(action("Crowd &report…", win.open_crowd_report, None,
                               "Analyse the answers crowd workers gave"))
    file_menu.addAction(action("&Evaluate privacy and utility…", win.open_evaluation, None,
                               "Surrogates against blur, pixelation and masks, "
                               "with re-identification attacks"))
    file_menu.addSeparator()
    file_menu.addAction(win.quit_action)
    view = bar.addMenu("&View")
    view.addAction(win.context_action)
    view.addSeparator()
    for name in ("points", "contours", "mesh", "none"):
        view.addAction(action(f"Landmarks: {name}", lambda _=False, n=name:
                              win.set_overlay(n)))
    sur = bar.addMenu("&Surrogate")
    sur.addAction(win.new_id_action)
    sur.addAction(win.match_action)
    sur.addSeparator()
    win.walk_action = action("Save latent &walk A → B…", win.save_walk, None,
                             "Filmstrip PNG and animated GIF between seeds A and B")
    sur.addAction(win.walk_action)
    sur.addSeparator()
    win.generator_actions = generator_menu(win, sur.addMenu("&Generator"))
    win.privacy_actions = privacy_menu(win, sur.addMenu("&Privacy"))
    bar.addMenu("&Help").addAction(win.about_action)

    tools = win.addToolBar("Main")
    tools.setObjectName("main_toolbar")
    for act in (win.open_action, win.prev_action, win.next_action, win.new_id_action,
                win.match_action, win.save_action):
        tools.addAction(act)
    win.recent = RecentPhotos(win.settings, recent_menu, win.open_path)


def generator_menu(win, menu: QMenu) -> dict[str, QAction]:
    """One checkable entry per shipped generator, bound to ``state.generator_key``."""
    from studio.core.generator.choices import CHOICES

    group = QActionGroup(win)
    actions = {}
    for choice in CHOICES:
        act = make_action(win, choice.title, lambda _=False, k=choice.key:
                          win.controller.choose_generator(k), None,
                          f"Draw surrogates with {choice.title}; model card "
                          f"models/generator/{choice.card}")
        act.setCheckable(True)
        group.addAction(act)
        menu.addAction(act)
        actions[choice.key] = act

    def show() -> None:
        actions[win.state.generator_key].setChecked(True)

    win.state.generator_changed.connect(show)
    show()
    return actions


def privacy_menu(win, menu: QMenu) -> dict[str, QAction]:
    """One checkable entry per privacy preset (``surrogates.privacy``), bound to
    ``state.privacy``: how the in-context faces are made."""
    from studio.core.surrogates.privacy import PRIVACY_PRESETS

    group = QActionGroup(win)
    actions = {}
    for name, preset in PRIVACY_PRESETS.items():
        act = make_action(win, f"&{name.capitalize()}: {preset.summary}",
                          lambda _=False, n=name: win.state.set_privacy(n), None,
                          f"In-context faces under the {name} privacy preset "
                          "(docs/privacy.md: what it protects against and what not)")
        act.setCheckable(True)
        group.addAction(act)
        menu.addAction(act)
        actions[name] = act

    def show() -> None:
        actions[win.state.privacy].setChecked(True)

    win.state.privacy_changed.connect(show)
    show()
    return actions


def show_about(parent: QWidget) -> None:
    from studio.core.assets import MODELS_DIR

    cards = "".join(f"<li>{p.name}</li>" for p in sorted(MODELS_DIR.rglob("*.md")))
    QMessageBox.about(parent, "About Surrogate Studio", (
        "<h3>Surrogate Studio</h3><p>Privacy-preserving surrogate faces that keep "
        "expression and head pose but replace the identity.</p>"
        f"<p>Model cards in <code>{MODELS_DIR}</code>:</p><ul>{cards}</ul>"
        "<p>Weights and calibrations fitted on GENKI-4K, UTKFace and CelebA are for "
        "<b>non-commercial research use only</b>. Third-party models: MediaPipe "
        "FaceLandmarker (Apache-2.0), dlib face models and the Cydral gender network "
        "(CC0).</p>"))
