"""P(male) from the dlib/Cydral gender network (ONNX) on a 32x32 aligned chip."""

from __future__ import annotations

import numpy as np

from studio.core.analysis.dlib_shape import face_chip
from studio.core.analysis.offline import onnxruntime_offline
from studio.core.assets import third_party_file

CHIP_SIZE = 32
#: The network was trained on dlib chips with 0.2 padding: without that margin it sees
#: a face cut at the brow and chin and its accuracy drops.
CHIP_PADDING = 0.2
#: Channel means and scale from the distribution's manifest: (RGB - mean) / 256.
CHANNEL_MEANS = np.array([122.781998, 117.000999, 104.297997], dtype=np.float32)


class GenderClassifier:
    def __init__(self) -> None:
        ort = onnxruntime_offline()  # ONNX Runtime's telemetry off (docs/privacy.md)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            str(third_party_file("gender-v1.onnx")), sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._input = self._session.get_inputs()[0].name

    def chip(self, rgb: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return face_chip(rgb, landmarks, CHIP_SIZE, CHIP_PADDING)

    def p_male_of_chips(self, chips: np.ndarray) -> np.ndarray:
        """P(male) for a batch of (N, 32, 32, 3) uint8 chips."""
        x = (chips.astype(np.float32) - CHANNEL_MEANS) / np.float32(256.0)
        x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        probs = self._session.run(None, {self._input: x})[0]
        return probs[:, 1].astype(np.float64)  # labels are (female, male)

    def p_male(self, rgb: np.ndarray, landmarks: np.ndarray) -> float:
        return float(self.p_male_of_chips(self.chip(rgb, landmarks)[None])[0])
