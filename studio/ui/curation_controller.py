"""The curation window's controller: it reads and writes the workspace and keeps the
``CurationState`` up to date; the window's widgets only draw that state.

Originals are found with ``Workspace.locate`` (any recorded place that still holds the
file), so a folder that has moved gives a clear message and the relink action, never a
crash half-way through revealing or regenerating.
"""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import QObject

from studio.core.analysis.framing import original_crop
from studio.core.workspace.paths import missing_originals
from studio.core.workspace.rules import AcceptReport, RuleError, accept_by_rule, needs_attention
from studio.core.workspace.store import FaceRecord, Workspace, face_analysis
from studio.ui.curation_state import CurationState
from studio.ui.workers import LatestOnly, run_in_thread

THUMB = 150
MOVED = "The original of this face is not where it was recorded: File > Relink originals…"
RELINKING = "Relinking the originals (every file is hashed) …"


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def common_folder(paths: list[str]) -> str:
    """The folder all these files were under: what a moved folder's old place was."""
    try:
        common = os.path.commonpath(paths)
    except ValueError:  # absolute and relative paths mixed, or different drives
        common = paths[0]
    return os.path.dirname(common) if common in paths else common


class CurationController(QObject):
    """The workspace's side of the window: what the filter shows, decisions and undo,
    regenerating, relinking moved originals, and measuring the chosen candidate."""

    def __init__(self, state: CurationState, workspace: Workspace, engine_provider) -> None:
        super().__init__()
        self.state, self.ws, self.engine_provider = state, workspace, engine_provider
        self.measure_jobs = LatestOnly(self)
        self.measure_jobs.result.connect(self._on_measured)
        self.measure_jobs.failed.connect(lambda _id, m: state.set_message(m, error=True))
        self._face = None  # the reviewed face as the comparison code takes it
        self._original: Path | None = None  # its photo: the second recognizer reads it
        self._described: tuple = (None, None)  # (face, the face with its second descriptor)
        self._measured_id: int | None = None
        state.filter_changed.connect(lambda _kind: self.reload())
        state.candidates_changed.connect(self._measure_current)
        state.current_changed.connect(self._measure_current)

    # -- items -----------------------------------------------------------------------
    def reload(self, keep_face: int | None = None) -> None:
        """The faces with a candidate the filter asks about; ``keep_face`` stays chosen."""
        state, kind = self.state, self.state.filter
        faces = self.ws.faces()
        by_face: dict[int, list] = {}
        for c in self.ws.candidates():
            by_face.setdefault(c.face_id, []).append(c)
        shown = [f for f in faces if any(needs_attention(c, kind) for c in by_face.get(f.id, []))]
        labels = []
        for f in shown:
            cands = by_face[f.id]
            done = sum(c.decision != "pending" for c in cands)
            labels.append(f"{f.key} · face {f.face_index} · {done}/{len(cands)} decided")
        face_ids = [f.id for f in shown]
        state.set_items(face_ids, labels)
        if face_ids:
            state.set_message("")
            self.choose_item(face_ids.index(keep_face) if keep_face in face_ids else 0)
        else:
            self._face = None
            state.set_item(None, None, None)
            state.set_candidates([])
            state.set_message(f"Nothing to show under \"{kind}\".")

    def check_originals(self) -> None:
        """Count the originals found at none of their recorded places (a moved folder)."""
        missing = missing_originals(self.ws)
        self.state.set_missing(len(missing), common_folder([p for _, p in missing])
                               if missing else "")

    def locate(self, face: FaceRecord) -> Path | None:
        """Where the face's original is now; None (with the message) when it has moved."""
        path = self.ws.locate(face.original_id)
        if path is None:
            self.state.set_message(MOVED, error=True)
        return path

    def _crop(self, face: FaceRecord) -> tuple[np.ndarray | None, str]:
        """The original's face crop, or None and why not."""
        path = self.ws.locate(face.original_id)
        if path is None:
            return None, MOVED
        try:
            from studio.core.analysis.images import load_image

            rgb = load_image(path).rgb  # read only, never written
        except Exception as exc:  # unreadable now: the candidates remain
            return None, f"The original cannot be read any more: {exc}"
        return original_crop(rgb, face.landmarks, size=THUMB), ""

    def choose_item(self, row: int) -> None:
        """Review face ``row``, from its first pending candidate, the original blurred."""
        state = self.state
        if not 0 <= row < len(state.face_ids):
            return
        face = self.ws.face(state.face_ids[row])
        candidates = self.ws.candidates(face.id)
        current = next((i for i, c in enumerate(candidates) if c.decision == "pending"), 0)
        original, error = self._crop(face)
        self._face = face_analysis(face)
        self._original = self.ws.locate(face.original_id) if not error else None
        state.set_item(row, face, original)
        state.set_candidates(candidates, current)
        if error:
            state.set_message(error, error=True)

    def step_item(self, delta: int) -> None:
        if self.state.face_ids:
            row = self.state.row or 0
            self.choose_item((row + delta) % len(self.state.face_ids))

    def candidate_rgb(self, candidate_id: int) -> np.ndarray:
        return decode(self.ws.image(candidate_id))

    # -- candidates ------------------------------------------------------------------
    def select(self, index: int) -> None:
        if 0 <= index < len(self.state.candidates):
            self.state.set_current(index)

    def step_candidate(self, delta: int) -> None:
        if self.state.candidates:
            self.select((self.state.current + delta) % len(self.state.candidates))

    def toggle_reveal(self) -> None:
        state = self.state
        if state.face is not None and state.original is None:  # read it again: relinked?
            original, error = self._crop(state.face)
            if original is None:
                state.set_message(error, error=True)
                return
            state.set_item(state.row, state.face, original)
            state.set_message("")
        state.set_revealed(not state.revealed)

    def _relinking(self) -> bool:
        """No writes while a relink holds the workspace: they would join its transaction."""
        if self.state.relinking:
            self.state.set_message(RELINKING, error=True)
        return self.state.relinking

    def decide(self, decision: str) -> None:
        state, c = self.state, self.state.candidate
        if c is None or state.face is None or self._relinking():
            return
        self.ws.decide(c.id, decision)
        self._refresh_rule()
        state.set_message(f"{c.method.upper()} seed {c.seed}: {decision}.")
        face_id = state.face.id
        candidates = self.ws.candidates(face_id)
        pending = [i for i, x in enumerate(candidates) if x.decision == "pending"]
        if pending:
            state.set_candidates(candidates, pending[0])
        else:  # this face is done: on to the next one the filter shows
            self.reload(keep_face=face_id)
            if state.filter == "all":
                self.step_item(1)

    def undo(self) -> None:
        """Revert the last step: one decision, or a whole bulk accept."""
        if self._relinking():
            return
        step = self.ws.undo_step()
        if step is None:
            self.state.set_message("Nothing to undo.")
            return
        self._refresh_rule()
        if step.bulk is not None:
            face = self.state.face
            self.reload(keep_face=face.id if face is not None else None)
            n = len(step.candidate_ids)
            self.state.set_message(f"Undone: {step.what} ({n} candidate{'s' * (n != 1)} "
                                   "back to their earlier decision).")
            return
        cid = step.candidate_ids[0]
        self.reload(keep_face=self.ws.face_of(cid))
        self.select(next(i for i, c in enumerate(self.state.candidates) if c.id == cid))
        self.state.set_message("Undone.")

    # -- accepting in bulk by a rule -------------------------------------------------
    def preview_rule(self, text: str, best: bool = False, override: bool = False) -> None:
        """What the rule would accept (a dry run), or why it cannot be used."""
        try:
            preview = accept_by_rule(self.ws, text, best_per_face=best, dry_run=True,
                                     override=override)
        except RuleError as exc:
            self.state.set_rule(text, best, override, None, exc.problem)
            return
        self.state.set_rule(text, best, override, preview)

    def clear_rule(self) -> None:
        """The rule's dialog has closed: no more counting on every decision."""
        self.state.set_rule("", False, False, None)

    def _refresh_rule(self) -> None:
        """Decisions changed: the rule's count with them."""
        state = self.state
        if state.rule:
            self.preview_rule(state.rule, state.rule_best, state.rule_override)

    def accept_rule(self) -> AcceptReport | None:
        """Accept what the previewed rule passes, as one step that undo reverts whole."""
        state = self.state
        if self._relinking():
            return None
        if state.rule_preview is None:
            state.set_message(state.rule_error or "Type a rule first, e.g. distance >= 0.65 "
                              "and smile_kept.", error=True)
            return None
        report = accept_by_rule(self.ws, state.rule, best_per_face=state.rule_best,
                                override=state.rule_override)
        face = state.face
        self.reload(keep_face=face.id if face is not None else None)
        self._refresh_rule()
        state.set_message(f"Accepted {report.count} candidate{'s' * (report.count != 1)} "
                          f"that pass {report.rule}; {report.faces_none} of {report.faces} "
                          "faces have none. Ctrl+Z undoes them all.")
        return report

    def regenerate(self) -> None:
        state, engine = self.state, self.engine_provider()
        c, face = state.candidate, state.face
        if c is None or face is None or self._relinking():
            return
        if engine is None:
            state.set_message("The models are still loading.", error=True)
            return
        path = self.locate(face)
        if path is None:
            return
        from studio.core.analysis.images import load_image
        from studio.core.surrogates.making import CandidateMaker

        seed = max(x.seed for x in state.candidates) + 1

        def job():
            image = load_image(path)
            return CandidateMaker(engine).make(c.method, image, face_analysis(face), seed)

        def done(value) -> None:
            png, metrics = value
            with self.ws.transaction() as db:
                self.ws.add_candidate(db, face.id, c.method, seed, face.attributes, metrics, png)
            if state.face is not None and state.face.id == face.id:  # still under review
                candidates = self.ws.candidates(face.id)
                state.set_candidates(candidates, next(
                    i for i, x in enumerate(candidates) if x.seed == seed and x.method == c.method))
            state.set_message(f"New {c.method.upper()} candidate, seed {seed}.")

        state.set_message("Regenerating …")
        run_in_thread(self, job, on_done=done, on_failed=lambda m: state.set_message(
            f"Could not regenerate: {m}", error=True))

    # -- relinking -------------------------------------------------------------------
    def relink(self, old: str | Path, new: str | Path) -> None:
        """Point the originals recorded under ``old`` at ``new`` (in a worker: it hashes
        every file), then say how many were found and show the workspace again."""
        state = self.state
        if self._relinking():
            return
        state.set_relinking(True)
        state.set_message(RELINKING)

        def done(report) -> None:
            state.set_relinking(False)
            self.check_originals()
            self.reload(keep_face=state.face.id if state.face is not None else None)
            text = (f"{report.relinked} original{'s' * (report.relinked != 1)} relinked, "
                    f"{state.missing} still missing")
            if report.different:
                text += (f"; {len(report.different)} file(s) under {report.new} differ from "
                         "the recorded originals and were left alone")
            state.set_message(text + ".", error=state.missing > 0)

        def failed(message: str) -> None:
            state.set_relinking(False)
            state.set_message(f"Could not relink: {message}", error=True)

        run_in_thread(self, self.ws.relink, str(old), str(new), on_done=done, on_failed=failed)

    # -- measuring -------------------------------------------------------------------
    def _measure_current(self) -> None:
        c = self.state.candidate
        if c is None or c.id == self._measured_id:  # a decision alone does not re-measure
            return
        self._measured_id = c.id
        analyzer = getattr(self.engine_provider(), "analyzer", None)
        if analyzer is None or self._face is None:
            return
        from studio.core.metrics.comparison import compare

        face, png, method, path = self._face, self.ws.image(c.id), c.method, self._original

        def job() -> tuple:
            return face, compare(analyzer, self._with_second(analyzer, face, path),
                                 decode(png)), method

        self.measure_jobs.submit(job)

    def _with_second(self, analyzer, face, path: Path | None):
        """The stored face with the second recognizer's descriptor, so that the panel shows
        both figures: the one the batch stored, or (a workspace from before schema 3) read
        from its original, once per face."""
        done, described = self._described
        if done is face:
            return described
        described = face
        if (face.descriptor2 is None and path is not None
                and getattr(analyzer, "second", None) is not None):
            from studio.core.analysis.images import load_image

            (described,) = analyzer.describe2(load_image(path).rgb, [face])
        self._described = (face, described)
        return described

    def _on_measured(self, _job_id: int, value: tuple) -> None:
        face, comparison, method = value
        if face is self._face:  # not a face the reviewer has left
            self.state.compared.show(face, {method: comparison})

    def stop(self) -> None:
        """The window is closing: results still in flight are dropped."""
        with contextlib.suppress(RuntimeError, TypeError):  # stopped before
            self.measure_jobs.result.disconnect(self._on_measured)
