"""The face search's user settings, declared once and light to import (``--help`` builds
every parser): the smallest face looked for, and what becomes of a face found where no
landmarks could be fitted."""

from __future__ import annotations

#: The smallest face (pixels across) looked for unless asked otherwise (``--min-face``).
MIN_FACE_DEFAULT = 12
#: What becomes of a face of 24 px or more that could not be fitted (``--unfitted``);
#: the first is the default, the safer: a blur of a large face can still be recognised.
UNFITTED_POLICIES = ("mask", "blur")
