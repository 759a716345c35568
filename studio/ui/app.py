"""Start the studio window."""

from __future__ import annotations

import sys
from pathlib import Path


def run(images: list[str] | None = None) -> int:
    import os

    headless = sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
        or os.environ.get("QT_QPA_PLATFORM"))
    if headless:
        print("error: no display to open the studio window on. Run it from a desktop session, "
              "or on a server with `xvfb-run -a make run`.", file=sys.stderr)
        return 2
    from PySide6.QtWidgets import QApplication

    from studio.ui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("Surrogate Studio")
    app.setOrganizationName("SurrogateStudio")
    style = Path(__file__).resolve().parents[2] / "resources" / "studio.qss"
    if style.is_file():
        app.setStyleSheet(style.read_text(encoding="utf-8"))
    window = MainWindow()
    window.show()
    first = images[0] if images else None
    window.controller.load_models(then=(lambda: window.open_path(first)) if first
                                  else window.open_demo)
    return app.exec()
