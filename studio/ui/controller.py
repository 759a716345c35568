"""Turns user actions into model jobs on worker threads and results into state changes.

Opening photos and loading models happen here; each surrogate method the window draws
live is a lane (``method_lanes``), keyed by its registry key in ``lanes``."""

from __future__ import annotations

import contextlib
import gc
import random
import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThreadPool

from studio.core.analysis.images import SUPPORTED_SUFFIXES, LoadedImage, display_copy
from studio.core.surrogates.registry import GAN, IN_CONTEXT, MORPHABLE, NEEDS_RENDERER
from studio.ui.lanes import Lane
from studio.ui.method_lanes import GanLane, InContextLane, MorphableLane
from studio.ui.state import StudioState
from studio.ui.workers import LatestOnly, run_in_thread


def _default_engine():
    from studio.core.surrogates.engine import SurrogateEngine

    return SurrogateEngine(staged=True)


class Controller(QObject):
    """Owns the engine, the analysis jobs and the lanes. Slider moves are coalesced: only
    the newest request is computed, and late results of older requests are dropped."""

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
        self.analysis_jobs.result.connect(self._on_opened)
        self.analysis_jobs.failed.connect(self._on_open_failed)
        self.analysis_jobs.busy_changed.connect(lambda b: state.busy_changed.emit("analysis", b))
        gan = GanLane(self)
        self.lanes: dict[str, Lane] = {GAN: gan, MORPHABLE: MorphableLane(self, first=gan),
                                       IN_CONTEXT: InContextLane(self, first=gan)}
        self.lanes[GAN].listen()
        self.lanes[MORPHABLE].listen()
        state.face_changed.connect(self._on_face_changed)
        self.lanes[IN_CONTEXT].listen()  # after _on_face_changed: the new face's sliders
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
            self.lanes[MORPHABLE].request()
        else:
            self.state.busy_changed.emit(NEEDS_RENDERER, True)

            def ready3d(_none) -> None:
                if self._stopped:
                    return
                # The models are in: move their millions of objects out of the garbage
                # collector's sight, so that a full collection no longer pauses the window
                # for tens of milliseconds in the middle of a slider drag.
                gc.freeze()
                self.state.busy_changed.emit(NEEDS_RENDERER, False)
                self.lanes[MORPHABLE].request()
                self.lanes[IN_CONTEXT].request()

            def failed3d(msg: str) -> None:
                gc.freeze()  # what loaded is loaded: keep it out of the collector's way
                self.state.busy_changed.emit(NEEDS_RENDERER, False)
                self.state.message.emit("error", f"The 3D view is unavailable: {msg}")

            run_in_thread(self, engine.load_3d, on_done=ready3d, on_failed=failed3d)
        if not self.analysis_jobs.busy:
            self.state.message.emit("info", f"Ready: {engine.model_name} on {engine.device_name}")
        analysis, image = self.state.analysis, self.state.image
        if analysis is None or image is None or all(f.descriptor is not None
                                                    for f in analysis.faces):
            self.lanes[GAN].request()
            return

        def described(new_analysis) -> None:
            if not self._stopped and self.state.analysis is analysis:  # still the photo on screen
                self.state.set_descriptors(new_analysis)
                self.lanes[GAN].request()
                self.lanes[MORPHABLE].request()

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
        # The photo on screen is about to go: its pending redraws and measuring would
        # only compete with the new photo's analysis.
        for lane in self.lanes.values():
            lane.hold()

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
            self.lanes[GAN].request()  # also when the new face's estimates equal the old
            self.lanes[MORPHABLE].schedule()

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
            self.lanes[GAN].request()

        def failed(msg: str) -> None:
            self._switching = False
            self.state.busy_changed.emit("models", False)
            self.state.generator_changed.emit()  # the menu shows the one still drawing
            self.state.message.emit("error", f"That generator could not be loaded: {msg}")

        run_in_thread(self, engine.switch_generator, key, on_done=done, on_failed=failed)

    @property
    def idle(self) -> bool:
        """No model job running or scheduled: what benchmarks and tests wait for."""
        return not (self.analysis_jobs.busy or self._switching
                    or any(lane.busy for lane in self.lanes.values()))

    def stop(self) -> None:
        """No more delayed work, and results still in flight are dropped: the window is
        closing, and its widgets may be gone before a worker reports back."""
        if self._stopped:
            return
        self._stopped = True
        for lane in self.lanes.values():
            lane.stop()
        for signal in (self.analysis_jobs.result, self.analysis_jobs.failed):
            with contextlib.suppress(RuntimeError, TypeError):  # none connected any more
                signal.disconnect()
