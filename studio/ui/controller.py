"""Turns user actions into model jobs on worker threads and results into state changes."""

from __future__ import annotations

import contextlib
import gc
import random
import sys
import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool, QTimer

from studio.core.analysis.images import SUPPORTED_SUFFIXES, LoadedImage, display_copy
from studio.ui.state import ContextPhoto, StudioState
from studio.ui.workers import LatestOnly, run_in_thread

SETTLE_3D_MS = 300
MEASURE_3D_AFTER_MS = 250


def _default_engine():
    from studio.core.surrogates.engine import SurrogateEngine

    return SurrogateEngine(staged=True)


class Controller(QObject):
    """Owns the engine and the job queues. Slider moves are coalesced: only the newest
    request is computed, and late results of older requests are dropped."""

    def __init__(self, state: StudioState, engine_factory=None) -> None:
        super().__init__()
        self.state = state
        self.engine = None  # SurrogateEngine, loaded in a worker (it imports torch)
        self._engine_factory = engine_factory or _default_engine
        self._switching = False  # a generator loading for choose_generator
        # The GAN surrogate is what a slider move waits for: it never queues behind the
        # slower measuring and 3D jobs (more pool threads than cores; it goes first).
        # Worker threads (3D rendering, measuring) hold the GIL in many short stretches;
        # a 1 ms switch interval (Python's default is 5) keeps the UI thread and the GAN
        # job from waiting a whole interval at each hand-over.
        sys.setswitchinterval(0.001)
        pool = QThreadPool.globalInstance()
        pool.setMaxThreadCount(max(pool.maxThreadCount(), 3))
        self.analysis_jobs = LatestOnly(self, priority=5)
        self.surrogate_jobs = LatestOnly(self, priority=10)
        self.compare_jobs = LatestOnly(self)
        self.render3d_jobs = LatestOnly(self)
        self.compare3d_jobs = LatestOnly(self)
        # The in-context photo follows the sliders live (a re-render, tens of ms), after the
        # GAN surrogate and before the slower measuring and 3D jobs.
        self.context_jobs = LatestOnly(self, priority=8)
        self.compare_ctx_jobs = LatestOnly(self)
        self.analysis_jobs.result.connect(self._on_opened)
        self.analysis_jobs.failed.connect(self._on_open_failed)
        self.analysis_jobs.busy_changed.connect(lambda b: state.busy_changed.emit("analysis", b))
        self.surrogate_jobs.result.connect(self._on_surrogate)
        self.surrogate_jobs.failed.connect(lambda _id, m: state.message.emit("error", m))
        self.compare_jobs.result.connect(lambda _id, r: state.set_comparison(r))
        self.compare_jobs.failed.connect(lambda _id, m: state.message.emit("error", m))
        self.surrogate_jobs.busy_changed.connect(
            lambda b: state.busy_changed.emit("surrogate", b))
        self.render3d_jobs.result.connect(self._on_surrogate3d)
        self.render3d_jobs.failed.connect(self._on_render3d_failed)
        self.compare3d_jobs.result.connect(lambda _id, r: state.set_comparison3d(*r))
        self.compare3d_jobs.failed.connect(lambda _id, m: state.message.emit("error", m))
        state.targets_changed.connect(self.request_surrogate)
        state.identity_changed.connect(self.request_surrogate)
        # The 3D view is redrawn once the sliders have been still for SETTLE_3D_MS: its
        # render and measuring share the GIL with the window and would slow the GAN
        # surrogate, which follows the slider live, down.
        self._settle3d = QTimer(self)
        self._settle3d.setSingleShot(True)
        self._settle3d.setInterval(SETTLE_3D_MS)
        self._settle3d.timeout.connect(self._settled_surrogate3d)
        self._measure3d = QTimer(self)
        self._measure3d.setSingleShot(True)
        self._measure3d.setInterval(MEASURE_3D_AFTER_MS)
        self._measure3d.timeout.connect(self._measure_surrogate3d)
        state.targets_changed.connect(self._schedule_surrogate3d)
        state.identity_changed.connect(self._schedule_surrogate3d)
        state.options3d_changed.connect(self.request_surrogate3d)
        state.face_changed.connect(self._on_face_changed)
        self._measure_ctx = QTimer(self)
        self._measure_ctx.setSingleShot(True)
        self._measure_ctx.setInterval(MEASURE_3D_AFTER_MS)
        self._measure_ctx.timeout.connect(self._measure_context)
        self._context_key: tuple | None = None  # (image, face, request) last submitted
        self.context_jobs.result.connect(self._on_context)
        self.context_jobs.failed.connect(self._on_context_failed)
        self.context_jobs.busy_changed.connect(lambda b: state.busy_changed.emit("context", b))
        self.compare_ctx_jobs.result.connect(lambda _id, r: state.set_comparison_ctx(*r))
        self.compare_ctx_jobs.failed.connect(lambda _id, m: state.message.emit("error", m))
        # After _on_face_changed: the sliders are the new face's by then.
        for signal in (state.targets_changed, state.identity_changed, state.face_changed,
                       state.context_view_changed):
            signal.connect(self._context_inputs_changed)
        self._queued_open: tuple | None = None
        self._stopped = False

    # -- start-up --------------------------------------------------------------------
    def load_models(self, then=None) -> None:
        """Load the analysis half, run ``then`` (open the first photo), then the generator.

        The generator's half imports torch, about three seconds on a CPU; the photo's
        landmarks and attributes show while it loads.
        """
        self.state.busy_changed.emit("models", True)
        self.state.message.emit("info", "Loading the face analysis …")

        def failed(msg: str) -> None:
            self.state.busy_changed.emit("models", False)
            self.state.message.emit("error", f"The models could not be loaded: {msg}")

        def analysis_ready(engine) -> None:
            if self._stopped:
                return
            self.engine = engine
            if self._queued_open is not None:
                args, self._queued_open = self._queued_open, None
                self._submit_open(*args)
            if then is not None:
                then()
            if engine.can_generate:
                self._generation_ready()
            else:
                run_in_thread(self, engine.load_generation,
                              on_done=lambda _none: self._generation_ready(), on_failed=failed)

        run_in_thread(self, self._engine_factory, on_done=analysis_ready, on_failed=failed)

    def _generation_ready(self) -> None:
        if self._stopped:
            return
        engine = self.engine
        self.state.busy_changed.emit("models", False)
        if engine.can_render3d:
            self.request_surrogate3d()
        else:
            self.state.busy_changed.emit("3d", True)

            def ready3d(_none) -> None:
                if self._stopped:
                    return
                # The models are in: move their millions of objects out of the garbage
                # collector's sight, so that a full collection no longer pauses the window
                # for tens of milliseconds in the middle of a slider drag.
                gc.freeze()
                self.state.busy_changed.emit("3d", False)
                self.request_surrogate3d()
                self.request_context()

            def failed3d(msg: str) -> None:
                gc.freeze()  # what loaded is loaded: keep it out of the collector's way
                self.state.busy_changed.emit("3d", False)
                self.state.message.emit("error", f"The 3D view is unavailable: {msg}")

            run_in_thread(self, engine.load_3d, on_done=ready3d, on_failed=failed3d)
        if not self.analysis_jobs.busy:
            self.state.message.emit("info", f"Ready: {engine.model_name} on {engine.device_name}")
        analysis, image = self.state.analysis, self.state.image
        if analysis is None or image is None or all(f.descriptor is not None
                                                    for f in analysis.faces):
            self.request_surrogate()
            return

        def described(new_analysis) -> None:
            if not self._stopped and self.state.analysis is analysis:  # still the photo on screen
                self.state.set_descriptors(new_analysis)
                self.request_surrogate()
                self.request_surrogate3d()

        run_in_thread(self, engine.describe, image, analysis, on_done=described,
                      on_failed=lambda m: self.state.message.emit("error", m))

    # -- photos ----------------------------------------------------------------------
    def open_path(self, path: str | Path) -> None:
        self._submit_open(str(path), None)

    def open_array(self, rgb: np.ndarray, name: str) -> None:
        self._submit_open(name, rgb)

    def _submit_open(self, path: str, rgb: np.ndarray | None) -> None:
        if self.engine is None:
            self._queued_open = (path, rgb)
            return
        engine = self.engine
        # The photo on screen is about to go: its pending 3D redraw and measuring would
        # only compete with the new photo's analysis.
        self._settle3d.stop()
        self._measure3d.stop()

        def job():  # runs in a worker: loading, analysis and the display copy
            if rgb is None:
                image, analysis = engine.open(path)
            else:
                image = LoadedImage(np.ascontiguousarray(rgb), path, "RGB", False)
                analysis = engine.analyze(image)
            return path, image, analysis, display_copy(image.rgb)

        self.analysis_jobs.submit(job)

    def _on_opened(self, _job_id: int, value: tuple) -> None:
        path, image, analysis, display = value
        if not self.state.locked:  # a new photo, a new identity
            self.state.set_identity(seed_a=random.randrange(1, 100000))
        self.state.set_timing(analysis=analysis.timings_ms.get("analysis", 0.0))
        self.state.set_image(path, image, analysis, display)
        n = len(analysis.faces)
        name = Path(path).name
        notes = "".join(f" ({note})" for note in analysis.notes)  # e.g. only the first frame
        if n == 0:
            self.state.message.emit("error", f"No face found in {name}{notes}. "
                                             "Try another photo.")
        elif n > 1:
            self.state.message.emit("info", f"{n} faces in {name}{notes}: click one to work "
                                            "on it.")
        else:
            self.state.message.emit("info", f"Analysed {name}{notes}.")

    def _on_open_failed(self, _job_id: int, message: str) -> None:
        self.state.message.emit("error", message)

    @staticmethod
    def folder_images(path: str | Path) -> list[Path]:
        folder = Path(path).parent
        try:
            files = [p for p in folder.iterdir() if p.suffix.lower() in SUPPORTED_SUFFIXES]
        except OSError:
            return []
        return sorted(files, key=lambda p: p.name.lower())

    def step_in_folder(self, delta: int) -> None:
        if not self.state.path or not Path(self.state.path).is_file():
            return
        files = self.folder_images(self.state.path)
        if not files:
            self.state.message.emit("error", "The photo's folder cannot be read.")
            return
        current = Path(self.state.path)
        idx = next((i for i, p in enumerate(files) if p.name == current.name), 0)
        self.open_path(files[(idx + delta) % len(files)])

    # -- faces and surrogates --------------------------------------------------------
    def _on_face_changed(self) -> None:
        if self.state.face is not None:
            self.match_original()
            self.request_surrogate()  # also when the new face's estimates equal the old
            self._schedule_surrogate3d()

    def match_original(self) -> None:
        face = self.state.face
        if face is None:
            return
        self.state.set_targets(**face.attributes.to_dict())

    def new_identity(self) -> None:
        if not self.state.locked:
            self.state.set_identity(seed_a=random.randrange(1, 100000), mix=0.0)

    def choose_generator(self, key: str) -> None:
        """Draw with another shipped generator (``generator.choices``); it loads in a
        worker, and the current one draws until it is in."""
        engine = self.engine
        if engine is None or not engine.can_generate or key == self.state.generator_key:
            return
        self._switching = True
        self.state.busy_changed.emit("models", True)

        def done(name: str) -> None:
            self._switching = False
            self.state.busy_changed.emit("models", False)
            self.state.set_generator(key)
            self.state.message.emit("info", f"Generator: {name}")
            self.request_surrogate()

        def failed(msg: str) -> None:
            self._switching = False
            self.state.busy_changed.emit("models", False)
            self.state.generator_changed.emit()  # the menu shows the one still drawing
            self.state.message.emit("error", f"That generator could not be loaded: {msg}")

        run_in_thread(self, engine.switch_generator, key, on_done=done, on_failed=failed)

    def request_surrogate(self) -> None:
        if self.engine is None or not self.engine.can_generate:
            return
        self.surrogate_jobs.submit(self.engine.surrogate, self.state.targets, self.state.z())

    @property
    def idle(self) -> bool:
        """No model job running or scheduled: what benchmarks and tests wait for."""
        return not (any(j.busy for j in self._all_jobs) or self._switching
                    or self._settle3d.isActive()
                    or self._measure3d.isActive() or self._measure_ctx.isActive())

    @property
    def _all_jobs(self) -> tuple[LatestOnly, ...]:
        return (self.analysis_jobs, self.surrogate_jobs, self.compare_jobs, self.render3d_jobs,
                self.compare3d_jobs, self.context_jobs, self.compare_ctx_jobs)

    def stop(self) -> None:
        """No more delayed work, and results still in flight are dropped: the window is
        closing, and its widgets may be gone before a worker reports back."""
        if self._stopped:
            return
        self._stopped = True
        self._settle3d.stop()
        self._measure3d.stop()
        self._measure_ctx.stop()
        for jobs in self._all_jobs:
            for signal in (jobs.result, jobs.failed):
                with contextlib.suppress(RuntimeError, TypeError):  # none connected any more
                    signal.disconnect()

    # -- the 3D surrogate ---------------------------------------------------------------
    def _schedule_surrogate3d(self) -> None:
        self._settle3d.start()  # (re)start: wait until the sliders settle

    def _settled_surrogate3d(self) -> None:
        if self.surrogate_jobs.busy:  # the GAN surrogate first; try again shortly
            self._settle3d.start()
        else:
            self.request_surrogate3d()

    def request_surrogate3d(self) -> None:
        state, engine = self.state, self.engine
        if (engine is None or not engine.can_render3d or state.face is None
                or state.image is None):
            return
        from studio.core.morphable.render import View
        from studio.core.morphable.surrogate import RECONSTRUCTION, Request3D

        identity = {"seed": state.seed_a, "mean": 0,
                    "reconstruction": RECONSTRUCTION}[state.identity3d]
        az, el, zoom = state.view3d
        request = Request3D(identity=identity, targets=state.targets, mode=state.mode3d,
                            background=state.background3d, view=View(az, el, zoom))
        self.render3d_jobs.submit(engine.surrogate3d, state.image, state.face, request)

    def _on_surrogate3d(self, _job_id: int, result) -> None:
        self.state.set_surrogate3d(result)
        self._measure3d.start()  # measured once the view has been still for a moment

    def _measure_surrogate3d(self) -> None:
        result, face, engine = self.state.surrogate3d, self.state.face, self.engine
        if result is None or face is None or engine is None or result.request.mode == "wireframe":
            return
        if self.surrogate_jobs.busy or self.render3d_jobs.busy:
            self._measure3d.start()
            return
        self.compare3d_jobs.submit(lambda: (result, engine.compare3d(face, result)))

    def _on_render3d_failed(self, _job_id: int, message: str) -> None:
        self.state.message.emit("error", f"The 3D view cannot render: {message}")

    def _on_surrogate(self, _job_id: int, result) -> None:
        # Show the face at once; measure it against the original in a second job.
        self.state.set_surrogate(result)
        if self.state.face is not None and self.engine is not None:
            self.compare_jobs.submit(self.engine.compare, self.state.face, result)

    # -- the photo in context -------------------------------------------------------------
    def _context_inputs_changed(self) -> None:
        if self.state.context_shown:
            self.request_context()
        else:  # made only while shown: what is kept would no longer match the sliders
            self._context_key = None
            if self.state.context is not None and not self._context_current():
                self.state.set_context(None)

    def _context_request(self):
        from studio.core.surrogates.incontext import ContextRequest

        return ContextRequest(seed=self.state.seed_a, targets=self.state.targets)

    def _context_current(self) -> bool:
        photo, state = self.state.context, self.state
        return (photo is not None and photo.image is state.image and photo.face is state.face
                and photo.request == self._context_request())

    def request_context(self) -> None:
        """The photo with the chosen face (first: the sliders edit it) and all the others
        replaced; nothing when that photo is already shown or on its way."""
        state, engine = self.state, self.engine
        if (not state.context_shown or engine is None or state.face is None
                or state.image is None or state.analysis is None):
            return
        if not engine.can_render3d:
            state.message.emit("info", "The in-context view waits for the 3D model to load …")
            return
        image, face, request = state.image, state.face, self._context_request()
        key = self._context_key
        if key is not None and key[0] is image and key[1] is face and key[2] == request:
            return
        if key is None and self._context_current():
            return
        self._context_key = (image, face, request)
        order = (state.face_index, *(i for i in range(len(state.analysis.faces))
                                     if i != state.face_index))
        faces = [state.analysis.faces[i] for i in order]

        unfitted = state.analysis.unfitted

        def job() -> ContextPhoto:
            t0 = time.perf_counter()
            result = engine.in_context(image, faces, request, verify=False, unfitted=unfitted)
            return ContextPhoto(result, display_copy(result.image), image, face, request,
                                (time.perf_counter() - t0) * 1e3, order)

        self.context_jobs.submit(job)

    def _on_context(self, _job_id: int, photo: ContextPhoto) -> None:
        previous = self.state.context
        self.state.set_context(photo)
        if self.state.context is not photo:
            return  # made for a photo or face no longer on screen
        notes = photo.notes()
        if notes and (previous is None or previous.notes() != notes):
            self.state.message.emit("info", "In context: " + "; ".join(notes) + ".")
        self._measure_ctx.start()

    def _on_context_failed(self, _job_id: int, message: str) -> None:
        self._context_key = None  # asked again, it is tried again
        self.state.message.emit("error", f"The in-context photo cannot be made: {message}")

    def _measure_context(self) -> None:
        """The face at the chosen face's place, cut from the in-context photo in the
        original's framing (as studio batch measures it), against the original."""
        photo, engine = self.state.context, self.engine
        if photo is None or engine is None:
            return
        if self.surrogate_jobs.busy or self.context_jobs.busy:
            self._measure_ctx.start()
            return
        from studio.core.analysis.framing import original_crop
        from studio.core.metrics.comparison import compare
        from studio.core.surrogates.making import EXPORT_SIZE

        face = photo.face
        self.compare_ctx_jobs.submit(lambda: (photo, compare(
            engine.analyzer, face, original_crop(photo.result.image, face.landmarks,
                                                 EXPORT_SIZE))))
