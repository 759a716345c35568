"""The evaluation window's state: what to evaluate, how far the run is, and what it found.

Plain data and one signal per part; the window's widgets write the options and draw the
rest. ``cancelled`` is read by the running job (through ``stop``) from its worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal

from studio.core.evaluation.methods import families

if TYPE_CHECKING:
    from studio.core.evaluation.job import Evaluated
    from studio.core.evaluation.summary import MethodResult

OPTIONS = frozenset({"folder", "families", "limit", "out_dir"})
DEFAULT_LIMIT = 200


class EvaluationState(QObject):
    options_changed = Signal()  # folder, families, limit, out_dir
    running_changed = Signal(bool)
    cancelled_changed = Signal(bool)  # Cancel was asked for during this run
    progress_changed = Signal(int, int)  # done, total (faces)
    result_changed = Signal()  # a finished run's results
    dataset_changed = Signal(str)  # which data set's results are shown
    message_changed = Signal(str, bool)  # text (lines), is it an error

    def __init__(self) -> None:
        super().__init__()
        self.folder = ""
        self.families: tuple[str, ...] = families()
        self.limit = DEFAULT_LIMIT  # photos used from the folder; 0 for all
        self.out_dir = str(Path.home() / "surrogate-evaluation")
        self.running = False
        self.cancelled = False
        self.done, self.total = 0, 0
        self.result: Evaluated | None = None
        self.dataset = ""
        self.message = ""
        self.error = False

    @property
    def results(self) -> list[MethodResult]:
        return self.result.results if self.result is not None else []

    def set_options(self, **values) -> None:
        """``folder``, ``families``, ``limit``, ``out_dir``."""
        unknown = set(values) - OPTIONS
        if unknown:
            raise TypeError(f"not an option: {', '.join(sorted(unknown))}")
        if "families" in values:
            values["families"] = tuple(values["families"])
        changed = {k: v for k, v in values.items() if getattr(self, k) != v}
        if changed:
            for key, value in changed.items():
                setattr(self, key, value)
            self.options_changed.emit()

    def set_running(self, running: bool) -> None:
        if running != self.running:
            self.running = running
            self.running_changed.emit(running)

    def set_cancelled(self, cancelled: bool) -> None:
        if cancelled != self.cancelled:
            self.cancelled = cancelled
            self.cancelled_changed.emit(cancelled)

    def set_progress(self, done: int, total: int) -> None:
        if (done, total) != (self.done, self.total):
            self.done, self.total = done, total
            self.progress_changed.emit(done, total)

    def set_result(self, result: Evaluated | None) -> None:
        if result is not self.result:
            self.result = result
            self.result_changed.emit()

    def set_dataset(self, name: str) -> None:
        if name != self.dataset:
            self.dataset = name
            self.dataset_changed.emit(name)

    def set_message(self, text: str, error: bool = False) -> None:
        if (text, error) != (self.message, self.error):
            self.message, self.error = text, error
            self.message_changed.emit(text, error)
