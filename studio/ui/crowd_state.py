"""The crowd report window's state: the three files, whether the analysis runs, its result
(the analysis and its figures) and the summary or error shown above them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from studio.core.crowd.statistics import CrowdAnalysis

FILES = ("results", "mapping", "truth")


class CrowdReportState(QObject):
    paths_changed = Signal()  # the results, mapping and truth files
    running_changed = Signal(bool)
    result_changed = Signal()  # the analysis and its figures
    message_changed = Signal(str, bool)  # text (lines), is it an error

    def __init__(self) -> None:
        super().__init__()
        self.paths: dict[str, str] = dict.fromkeys(FILES, "")
        self.running = False
        self.analysis: CrowdAnalysis | None = None
        self.figures: dict[str, Figure] = {}
        self.message = ""
        self.error = False

    def set_paths(self, **paths: str) -> None:
        """``results``, ``mapping``, ``truth``."""
        unknown = set(paths) - set(FILES)
        if unknown:
            raise TypeError(f"not a file of the report: {', '.join(sorted(unknown))}")
        new = {**self.paths, **paths}
        if new != self.paths:
            self.paths = new
            self.paths_changed.emit()

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)

    def set_result(self, analysis: CrowdAnalysis | None, figures: dict[str, Figure]) -> None:
        if analysis is not self.analysis or figures is not self.figures:
            self.analysis, self.figures = analysis, figures
            self.result_changed.emit()

    def set_message(self, text: str, error: bool = False) -> None:
        if (text, error) != (self.message, self.error):
            self.message, self.error = text, error
            self.message_changed.emit(text, error)
