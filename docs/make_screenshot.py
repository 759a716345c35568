"""Screenshot of the studio window with the demo face, for the README.

Run: ``make screenshot`` (starts Xvfb) or, on a desktop,
``.venv/bin/python docs/make_screenshot.py docs/screenshot.png``.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from studio.core.surrogates.registry import GAN, IN_CONTEXT, MORPHABLE
from studio.ui.main_window import MainWindow


def main(out: str = "docs/screenshot.png") -> None:
    random.seed(0)  # the window draws its first identity seed at random: the same one each time
    app = QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory() as tmp:
        win = MainWindow(settings=QSettings(str(Path(tmp) / "s.ini"), QSettings.Format.IniFormat))
        win.resize(1500, 900)
        win.show()
        win.controller.load_models(then=win.open_demo)
        end = time.perf_counter() + 120
        while ((win.state.compared.comparison(GAN) is None
                or win.state.compared.comparison(MORPHABLE) is None)
               and time.perf_counter() < end):
            app.processEvents()
            time.sleep(0.01)
        # the photo with its face replaced: the in-context surrogate, the studio's default
        win.context_action.setChecked(True)
        while (win.state.compared.comparison(IN_CONTEXT) is None
               and time.perf_counter() < end):
            app.processEvents()
            time.sleep(0.01)
        for _ in range(50):
            app.processEvents()
            time.sleep(0.01)
        win.grab().save(out)
        win.close()
    print(f"saved {out}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
