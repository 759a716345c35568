"""The strict privacy preset in a workspace (issue 28): ``studio batch`` makes the in-context
surrogate under each preset as a method of its own (``context-strict``), the workspace
records which preset each candidate was made with, and the export's private mapping says
it. A real held-out face (GENKI-4K's test split)."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest
from PIL import Image

from studio.core.surrogates.registry import REGISTRY
from studio.core.workspace.export import export_batch
from studio.core.workspace.store import Workspace

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def both_presets(batched):
    """One real face with one in-context candidate under each preset."""
    path, report = batched("presets", 1, 1, ("context", "context-strict"))
    assert report.faces == 1 and report.candidates == 2
    return path


def test_a_strict_candidate_differs_from_the_default_for_the_same_seed(both_presets):
    with Workspace(both_presets) as ws:
        made = {c.method: c for c in ws.candidates()}
        assert set(made) == {"context", "context-strict"}
        default, strict = made["context"], made["context-strict"]
        assert default.seed == strict.seed and default.face_id == strict.face_id
        assert REGISTRY[strict.method].privacy == "strict"
        assert REGISTRY[default.method].privacy == "default"
        a, b = (np.asarray(Image.open(io.BytesIO(ws.image(c.id))).convert("RGB"), float)
                for c in (default, strict))
    # The crops share the original's framing: strict blurs what is around the face, so
    # the corners (context) differ in texture, not only the face.
    corner = (slice(0, 24), slice(0, 24))
    assert np.abs(a - b).mean() > 3
    assert np.abs(a[corner] - b[corner]).mean() > 1
    sharp = [float(np.abs(np.diff(x[corner], axis=1)).mean()) for x in (a, b)]
    assert sharp[1] < sharp[0], sharp  # the blurred context is smoother


def test_the_export_mapping_says_which_preset_each_item_was_made_with(both_presets,
                                                                       engine, tmp_path):
    with Workspace(both_presets) as ws:
        for c in ws.candidates():
            ws.decide(c.id, "accepted")
        report = export_batch(ws, tmp_path / "batch", engine.analyzer,
                              formats=("labelstudio",), seed=2)
    with report.mapping.open(newline="") as fh:
        versions = sorted(row["version"] for row in csv.DictReader(fh))
    assert not report.refused, report.refused
    assert versions == ["context", "context-strict"]
