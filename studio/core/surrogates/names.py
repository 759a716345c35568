"""The surrogate methods' names, in a module light enough for ``studio --help``."""

from __future__ import annotations

#: The surrogate methods: the conditional GAN, the 3D morphable model on its own, and the
#: 3D face put into the photo itself ("context").
SURROGATE_METHODS = ("gan", "3d", "context")
#: What ``studio batch`` makes unless told otherwise (the context method triples a batch's
#: time; ask for it with ``--methods gan,3d,context``).
BATCH_METHODS = ("gan", "3d")
#: The methods that render the morphable model (and need OpenGL).
RENDERED_METHODS = ("3d", "context")
#: The revision of how a method draws, where it changes without a model file changing:
#: part of every cached evaluation observation's key, so that a new revision is measured
#: anew (and only that method). Bump it with any change to what the method outputs.
#: context 4: the refiner (issue 27) and the recall detector's unfitted faces (issue 25).
REVISIONS = {"context": 4}
