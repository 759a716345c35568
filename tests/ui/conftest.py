"""The windows' fixtures: a studio window on the session's models, opening a photo and
waiting for its surrogate, and the check that a state's setter announces a change once."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThreadPool

from studio.core.surrogates.registry import GAN


@pytest.fixture
def window(qtbot, tmp_path, engine):
    """The studio window on the session's engine, its models loaded, its settings in tmp."""
    from studio.ui.controller import Controller
    from studio.ui.main_window import MainWindow
    from studio.ui.state import StudioState

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


@pytest.fixture
def open_and_wait(qtbot):
    """``open_and_wait(win, path)``: open a photo in a studio window and wait until it is
    shown, with its GAN surrogate drawn and measured when a face was found."""

    def open_and_wait(win, path) -> None:
        before = win.surrogate.generation
        win.open_path(path)
        qtbot.waitUntil(lambda: win.state.path == str(path), timeout=30000)
        if win.state.face is not None:
            qtbot.waitUntil(lambda: win.surrogate.generation > before, timeout=30000)
            qtbot.waitUntil(lambda: win.state.compared.comparison(GAN) is not None,
                            timeout=30000)

    return open_and_wait


@pytest.fixture
def emits(qtbot):
    """``emits(signal, action, times=1)``: ``action()`` emits ``signal`` exactly ``times``
    times (synchronously)."""

    def emits(signal, action, times: int = 1) -> None:
        seen = []
        signal.connect(lambda *args: seen.append(args))
        action()
        qtbot.wait(0)
        assert len(seen) == times, f"{len(seen)} emissions, expected {times}"

    return emits
