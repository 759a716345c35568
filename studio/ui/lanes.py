"""A lane: one surrogate method in the studio window, from the sliders to its measures.

Every method the window draws live goes the same way: a job makes its output off the UI
thread (``LatestOnly``: only the newest request counts), the output goes into the state,
and a second job measures it against the original, whose measures go into the state's
``ComparisonState`` under the method's key. A lane holds that plumbing once; a method's
lane (``method_lanes``) says only what it makes, where the output goes and how it is
measured, and whether it waits for the sliders to settle or for another lane to finish.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, QTimer

from studio.ui.workers import LatestOnly

RETRY_MS = 30  # how often a lane whose measuring waits looks again

if TYPE_CHECKING:
    from studio.core.metrics.comparison import Comparison
    from studio.ui.controller import Controller


class Lane(QObject):
    """The making and measuring jobs of one method, and the timers that pace them."""

    method = ""  # the registry key its measures and busy events go under
    priority = 0  # of its making jobs among the pool's queued jobs (higher starts first)
    settle_ms: int | None = None  # made once the inputs were still this long (None: at once)
    measure_ms: int | None = None  # measured once shown this long (None: at once)
    #: Measured once no other lane is making its output (retried this often): measuring
    #: runs the whole analysis, and on two cores it doubled the in-context repaint.
    yields_to_making = False
    timing: str | None = None  # the ``StudioState.timings`` entry its measuring time goes to
    failure = ""  # said before a failed making job's own message

    def __init__(self, controller: Controller, first: Lane | None = None) -> None:
        super().__init__(controller)
        self.controller, self.state = controller, controller.state
        self.first = first  # a lane whose making goes first: this one waits while it runs
        self.jobs = LatestOnly(self, priority=self.priority)
        self.measure_jobs = LatestOnly(self)
        self.jobs.result.connect(self._on_made)
        self.jobs.failed.connect(self._on_failed)
        self.jobs.busy_changed.connect(lambda b: self.state.busy_changed.emit(self.method, b))
        self.measure_jobs.result.connect(self._on_measured)
        self.measure_jobs.failed.connect(lambda _id, m: self.state.message.emit("error", m))
        self._settle = self._timer(self.settle_ms, self._settled)
        waits = self.measure_ms is not None or self.yields_to_making
        self._measure = self._timer(self.measure_ms or RETRY_MS if waits else None,
                                    self._measure_now)

    def _timer(self, ms: int | None, slot: Callable[[], None]) -> QTimer | None:
        if ms is None:
            return None
        timer = QTimer(self)
        timer.setSingleShot(True)
        timer.setInterval(ms)
        timer.timeout.connect(slot)
        return timer

    # -- what a method's lane says ---------------------------------------------------------
    def listen(self) -> None:
        """Connect the state's changes that ask this lane for a new output."""

    def job(self) -> Callable[[], object] | None:
        """The making job for the window's inputs now, or None (nothing to make yet)."""
        raise NotImplementedError

    def show(self, made: object) -> bool:
        """Put the output into the state; False when it was made for what is gone."""
        raise NotImplementedError

    def current(self) -> object | None:
        """The output the state shows now: the one whose measures are wanted."""
        raise NotImplementedError

    def measure_job(self, made: object) -> Callable[[], Comparison] | None:
        """The job that measures ``made`` against its original, or None (nothing to
        measure)."""
        raise NotImplementedError

    def failed(self, message: str) -> None:
        self.state.message.emit("error", self.failure + message)

    # -- the plumbing ----------------------------------------------------------------------
    @property
    def engine(self):
        return self.controller.engine

    @property
    def busy(self) -> bool:
        """A job of this lane runs, or one is scheduled."""
        return (self.jobs.busy or self.measure_jobs.busy
                or any(t is not None and t.isActive() for t in (self._settle, self._measure)))

    def request(self) -> None:
        """Make the output for the window's inputs now."""
        job = self.job()
        if job is not None:
            self.jobs.submit(job)

    def schedule(self) -> None:
        """Make it once the inputs settle (at once for a lane that does not wait)."""
        if self._settle is None:
            self.request()
        else:
            self._settle.start()  # (re)start: wait until the sliders settle

    def _first_busy(self) -> bool:
        return self.first is not None and self.first.jobs.busy

    def _others_making(self) -> bool:
        return self.yields_to_making and any(
            lane.jobs.busy for lane in self.controller.lanes.values() if lane is not self)

    def _settled(self) -> None:
        if self._first_busy():  # the first lane's output first; try again shortly
            self._settle.start()
        else:
            self.request()

    def _on_made(self, _job_id: int, made: object) -> None:
        if not self.show(made):
            return
        if self._measure is None or self.measure_ms is None:
            self._measure_now()
        else:
            self._measure.start()  # measured once the output has been still for a moment

    def _on_failed(self, _job_id: int, message: str) -> None:
        self.failed(message)

    def _measure_now(self) -> None:
        made = self.current()
        if made is None or self.engine is None:
            return
        if self._measure is not None and (self._first_busy() or self.jobs.busy
                                          or self._others_making()):
            self._measure.start()  # its measuring would slow the outputs being made
            return
        measure = self.measure_job(made)
        if measure is None:
            return

        def job() -> tuple[object, Comparison, float]:
            t0 = time.perf_counter()
            comparison = measure()
            return made, comparison, (time.perf_counter() - t0) * 1e3

        self.measure_jobs.submit(job)

    def _on_measured(self, _job_id: int, value: tuple[object, Comparison, float]) -> None:
        made, comparison, ms = value
        if made is not self.current() or comparison.original is not self.state.face:
            return  # measured for an output or face that is no longer shown
        self.state.set_measures(self.method, made, comparison)
        if self.timing is not None:
            self.state.set_timing(**{self.timing: ms})

    def hold(self) -> None:
        """No scheduled work: the photo on screen is about to go."""
        for timer in (self._settle, self._measure):
            if timer is not None:
                timer.stop()

    def stop(self) -> None:
        """No more work, and results still in flight are dropped (the window closes)."""
        self.hold()
        for jobs in (self.jobs, self.measure_jobs):
            for signal in (jobs.result, jobs.failed):
                with contextlib.suppress(RuntimeError, TypeError):  # none connected any more
                    signal.disconnect()
