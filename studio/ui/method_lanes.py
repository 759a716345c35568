"""The studio window's three live methods as lanes (``lanes.Lane``): what each makes from
the sliders, where its output goes in the state, and how it is measured.

- The GAN surrogate follows the sliders live and goes first: the others wait while it is
  made, and it never queues behind them (the highest priority).
- The 3D render waits for the sliders to settle: its render and measuring share the GIL
  with the window and would slow the GAN surrogate down.
- The in-context photo is made only while the photo view shows it (a re-render, tens of
  ms), after the GAN surrogate and before the slower measuring and 3D jobs.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial

from studio.core.analysis.images import display_copy
from studio.core.surrogates.registry import GAN, IN_CONTEXT, MORPHABLE
from studio.ui.lanes import Lane
from studio.ui.state import ContextPhoto

SETTLE_3D_MS = 300
MEASURE_AFTER_MS = 250  # a render or in-context photo is measured once it stayed this long


class GanLane(Lane):
    """The conditional generator's face for the sliders and identity, measured at once."""

    method, priority, timing = GAN, 10, "compare"
    yields_to_making = True  # its measures wait for the 3D and in-context outputs

    def listen(self) -> None:
        self.state.targets_changed.connect(self.request)
        self.state.identity_changed.connect(self.request)

    def job(self) -> Callable[[], object] | None:
        engine = self.engine
        if engine is None or not engine.can_generate:
            return None
        return partial(engine.surrogate, self.state.targets, self.state.z())

    def show(self, made) -> bool:
        self.state.set_surrogate(made)  # shown at once; measured in a second job
        return True

    def current(self):
        return self.state.surrogate

    def measure_job(self, made):
        face, engine = self.state.face, self.engine
        if face is None:
            return None
        return lambda: engine.compare(face, made).comparison


class MorphableLane(Lane):
    """The morphable model's face with the 3D panel's identity, look and camera."""

    method, settle_ms, measure_ms = MORPHABLE, SETTLE_3D_MS, MEASURE_AFTER_MS
    failure = "The 3D view cannot render: "

    def listen(self) -> None:
        self.state.targets_changed.connect(self.schedule)
        self.state.identity_changed.connect(self.schedule)
        self.state.options3d_changed.connect(self.request)

    def job(self) -> Callable[[], object] | None:
        state, engine = self.state, self.engine
        if (engine is None or not engine.can_render3d or state.face is None
                or state.image is None):
            return None
        from studio.core.morphable.render import View
        from studio.core.morphable.surrogate import RECONSTRUCTION, Request3D

        identity = {"seed": state.seed_a, "mean": 0,
                    "reconstruction": RECONSTRUCTION}[state.identity3d]
        az, el, zoom = state.view3d
        request = Request3D(identity=identity, targets=state.targets, mode=state.mode3d,
                            background=state.background3d, view=View(az, el, zoom))
        return partial(engine.surrogate3d, state.image, state.face, request)

    def show(self, made) -> bool:
        self.state.set_surrogate3d(made)
        return True

    def current(self):
        return self.state.surrogate3d

    def measure_job(self, made):
        face, engine = self.state.face, self.engine
        if face is None or made.request.mode == "wireframe":
            return None
        return lambda: engine.compare3d(face, made)


class InContextLane(Lane):
    """The photo with the chosen face (first: the sliders edit it) and all the others
    replaced, made only while the photo view shows it."""

    method, priority, measure_ms = IN_CONTEXT, 8, MEASURE_AFTER_MS
    failure = "The in-context photo cannot be made: "

    def __init__(self, controller, first: Lane | None = None) -> None:
        super().__init__(controller, first)
        self._key: tuple | None = None  # (image, face, request) last submitted

    def listen(self) -> None:
        for signal in (self.state.targets_changed, self.state.identity_changed,
                       self.state.face_changed, self.state.context_view_changed,
                       self.state.privacy_changed):
            signal.connect(self.inputs_changed)

    def inputs_changed(self) -> None:
        if self.state.context_shown:
            self.request()
        else:  # made only while shown: what is kept would no longer match the sliders
            self._key = None
            if self.state.context is not None and not self._current_matches():
                self.state.set_context(None)

    def _request(self):
        from studio.core.surrogates.privacy import privacy_preset

        return privacy_preset(self.state.privacy).request(seed=self.state.seed_a,
                                                          targets=self.state.targets)

    def _current_matches(self) -> bool:
        photo, state = self.state.context, self.state
        return (photo is not None and photo.image is state.image and photo.face is state.face
                and photo.request == self._request())

    def job(self) -> Callable[[], ContextPhoto] | None:
        """Nothing when the photo is hidden, or already shown or on its way."""
        state, engine = self.state, self.engine
        if (not state.context_shown or engine is None or state.face is None
                or state.image is None or state.analysis is None):
            return None
        if not engine.can_render3d:
            state.message.emit("info", "The in-context view waits for the 3D model to load …")
            return None
        image, face, request = state.image, state.face, self._request()
        key = self._key
        if key is not None and key[0] is image and key[1] is face and key[2] == request:
            return None
        if key is None and self._current_matches():
            return None
        self._key = (image, face, request)
        order = (state.face_index, *(i for i in range(len(state.analysis.faces))
                                     if i != state.face_index))
        faces = [state.analysis.faces[i] for i in order]
        unfitted = state.analysis.unfitted

        def job() -> ContextPhoto:
            t0 = time.perf_counter()
            result = engine.in_context(image, faces, request, verify=False, unfitted=unfitted)
            return ContextPhoto(result, display_copy(result.image), image, face, request,
                                (time.perf_counter() - t0) * 1e3, order)

        return job

    def show(self, made: ContextPhoto) -> bool:
        previous = self.state.context
        self.state.set_context(made)
        if self.state.context is not made:
            return False  # made for a photo or face no longer on screen
        notes = made.notes()
        if notes and (previous is None or previous.notes() != notes):
            self.state.message.emit("info", "In context: " + "; ".join(notes) + ".")
        return True

    def failed(self, message: str) -> None:
        self._key = None  # asked again, it is tried again
        super().failed(message)

    def current(self):
        return self.state.context

    def measure_job(self, made: ContextPhoto):
        """The face at the chosen face's place, cut from the in-context photo in the
        original's framing (as studio batch measures it), against the original."""
        from studio.core.analysis.framing import original_crop
        from studio.core.metrics.comparison import compare
        from studio.core.surrogates.making import EXPORT_SIZE

        analyzer, face = self.engine.analyzer, made.face
        return lambda: compare(analyzer, face, original_crop(made.result.image, face.landmarks,
                                                             EXPORT_SIZE))
