"""In-context surrogates checked against the faces they replace, and drawn again if not
far enough.

Measured on 99 held-out UTKFace faces, one draw of a new identity left 30% of the faces
within dlib's same-person distance (0.6) of the original: the kept hair, outline and
light carry identity, and a PCA face sits near the middle of descriptor space. So every
face is checked, at the original's landmarks (the new face sits exactly there), and
redrawn with a new seed and a wider spread of identities until it is far enough; a face
that never gets there is blurred, and the result says so. The check runs the identity
network once per face and draw.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from studio.core.analysis.analyzer import FaceAnalysis
from studio.core.analysis.identity import SAME_PERSON_THRESHOLD, IdentityEncoder
from studio.core.surrogates import compositing
from studio.core.surrogates.incontext import (
    ContextRequest,
    ContextResult,
    FaceOutcome,
    InContextMaker,
    PreparedFace,
)

#: Identity spread of each draw: the first as the model's variance, then wider.
SPREADS = (1.0, 1.3, 1.6, 1.9)
#: The check's margin over dlib's threshold: the check reads the new face at the
#: original's landmarks, a re-analysis at its own (which the evaluation does) differs a little.
MARGIN = 0.03


@dataclass(frozen=True)
class Verified:
    result: ContextResult
    distances: list[float | None] = field(default_factory=list)  # per face, last draw
    draws: int = 1


def replace_verified(maker: InContextMaker, encoder: IdentityEncoder, rgb: np.ndarray,
                     faces: list[FaceAnalysis], request: ContextRequest | None = None,
                     prepared: list[PreparedFace] | None = None,
                     threshold: float = SAME_PERSON_THRESHOLD + MARGIN) -> Verified:
    """``maker.make`` with every replaced face at least ``threshold`` from its original."""
    request = request or ContextRequest()
    prepared = prepared or [maker.prepare(rgb, f) for f in faces]
    originals = [f.descriptor if f.descriptor is not None else
                 encoder.descriptor(rgb, f.landmarks) for f in faces]
    pending = set(range(len(faces)))
    spreads: dict[int, float] = {}
    draws: dict[int, int] = {}
    distances: list[float | None] = [None] * len(faces)
    result = None
    for attempt, spread in enumerate(SPREADS):
        for i in pending:
            spreads[i], draws[i] = spread, attempt
        result = maker.make(rgb, faces, request, prepared, spreads=spreads, draws=draws)
        for i in list(pending):
            outcome = result.faces[i]
            if not outcome.replaced:
                pending.discard(i)
                continue
            d = float(np.linalg.norm(encoder.descriptor(result.image, faces[i].landmarks)
                                     - originals[i]))
            distances[i] = d
            if d >= threshold:
                pending.discard(i)
        if not pending:
            return Verified(result, distances, attempt + 1)
    assert result is not None
    image, changed = result.image, result.changed.copy()
    outcomes = list(result.faces)
    for i in sorted(pending):
        image, mask = compositing.blur_face(image, faces[i].landmarks)
        changed |= mask
        outcomes[i] = FaceOutcome(i, False, f"no new identity of {len(SPREADS)} drawn was "
                                  f"far enough from the original (last {distances[i]:.2f}): "
                                  "blurred", None)
    notes = (*result.notes, f"{len(pending)} face(s) blurred: no new identity was far enough")
    return Verified(replace(result, image=image, changed=changed, faces=outcomes, notes=notes),
                    distances, len(SPREADS))
