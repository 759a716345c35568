"""Worker threads for model calls, so the UI thread never waits.

``LatestOnly`` is the slider pattern: while one job runs, only the newest request waits
behind it, and the result of any request that has been superseded is dropped.
``ProgressSignal`` is the core's ``progress(done, total, message)`` protocol as a signal.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, Slot

from studio.core.errors import StudioError


class ProgressSignal(QObject):
    """Pass it to a long core function as its ``progress``: each call, from whatever worker
    thread, emits ``changed``, which reaches slots of objects in the UI thread queued."""

    changed = Signal(int, int, str)  # done, total, message (the stage)

    def __call__(self, done: int, total: int, message: str) -> None:
        self.changed.emit(done, total, message)


class _Signals(QObject):
    done = Signal(int, object)
    failed = Signal(int, str)


class _Job(QRunnable):
    def __init__(self, job_id: int, fn: Callable[..., Any], args: tuple) -> None:
        super().__init__()
        self.job_id, self.fn, self.args = job_id, fn, args
        self.signals = _Signals()
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            result = self.fn(*self.args)
        except StudioError as exc:
            self.signals.failed.emit(self.job_id, str(exc))
        except Exception as exc:  # shown to the user, logged for us; never a crash
            traceback.print_exc()
            self.signals.failed.emit(self.job_id, f"{type(exc).__name__}: {exc}")
        else:
            self.signals.done.emit(self.job_id, result)


class LatestOnly(QObject):
    """Runs one job at a time; keeps only the newest waiting request."""

    result = Signal(int, object)  # request id, result
    failed = Signal(int, str)
    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None, pool: QThreadPool | None = None,
                 priority: int = 0) -> None:
        super().__init__(parent)
        self._pool = pool or QThreadPool.globalInstance()
        self._priority = priority  # queued jobs with a higher priority start first
        self._latest = 0
        self._running: _Job | None = None
        self._pending: tuple[int, Callable[..., Any], tuple] | None = None
        self.dropped = 0  # superseded results thrown away (for tests and the status bar)

    @property
    def latest_id(self) -> int:
        return self._latest

    @property
    def busy(self) -> bool:
        return self._running is not None

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        self._latest += 1
        if self._pending is not None:
            self.dropped += 1  # a waiting request that never ran
        self._pending = (self._latest, fn, args)
        if self._running is None:
            self._start_pending()
        return self._latest

    def _start_pending(self) -> None:
        assert self._pending is not None
        job_id, fn, args = self._pending
        self._pending = None
        job = _Job(job_id, fn, args)
        job.signals.done.connect(self._on_done)
        job.signals.failed.connect(self._on_failed)
        was_busy = self._running is not None
        self._running = job
        if not was_busy:
            self.busy_changed.emit(True)
        self._pool.start(job, self._priority)

    def _finish(self) -> None:
        self._running = None
        if self._pending is not None:
            self._start_pending()
        else:
            self.busy_changed.emit(False)

    @Slot(int, object)
    def _on_done(self, job_id: int, value: object) -> None:
        current = job_id == self._latest
        self._finish()
        if current:
            self.result.emit(job_id, value)
        else:
            self.dropped += 1

    @Slot(int, str)
    def _on_failed(self, job_id: int, message: str) -> None:
        current = job_id == self._latest
        self._finish()
        if current:
            self.failed.emit(job_id, message)


def run_in_thread(parent: QObject, fn: Callable[..., Any], *args: Any,
                  on_done: Callable[[Any], None], on_failed: Callable[[str], None]) -> None:
    """A one-off job (model loading, export) with callbacks on the UI thread."""
    job = _Job(0, fn, args)
    job.signals.setParent(None)
    job.signals.done.connect(lambda _id, value: on_done(value))
    job.signals.failed.connect(lambda _id, msg: on_failed(msg))
    # Keep the signal object alive until the job reports back.
    keep = getattr(parent, "_studio_jobs", [])
    keep.append(job.signals)
    parent._studio_jobs = keep  # type: ignore[attr-defined]
    QThreadPool.globalInstance().start(job)
