"""Calibrations that turn MediaPipe's raw outputs into the studio's attributes.

Both are fitted on the GENKI-4K training split only (``studio calibrate``) and stored
as plain JSON in ``models/analysis_calibration.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from studio.core.assets import MODELS_DIR
from studio.core.errors import ModelFileError

CALIBRATION_FILE = MODELS_DIR / "analysis_calibration.json"
#: Extrinsic y-x-z Euler angles of the pose matrix give (yaw, pitch, roll) in that order.
EULER_ORDER = "yxz"


def raw_euler(transform: np.ndarray) -> np.ndarray:
    """MediaPipe's (yaw, pitch, roll) in degrees, before calibration.

    Extrinsic y-x-z angles of R = Rz(roll) Rx(pitch) Ry(yaw), in numpy rather than scipy's
    Rotation: scipy inspects ``sys.modules["torch"]`` on every call and fails while another
    thread is still importing torch, which the window does at start-up. A test holds this
    equal to ``Rotation.as_euler("yxz")``.
    """
    u, _, vt = np.linalg.svd(np.asarray(transform, np.float64)[:3, :3])
    r = u @ vt  # the nearest rotation: drops any scale in the pose matrix
    yaw = np.arctan2(-r[2, 0], r[2, 2])
    pitch = np.arcsin(np.clip(r[2, 1], -1.0, 1.0))
    roll = np.arctan2(-r[0, 1], r[1, 1])
    return np.degrees([yaw, pitch, roll])


@dataclass(frozen=True)
class Calibration:
    joy_coef: np.ndarray  # (52,)
    joy_intercept: float
    pose_slope: np.ndarray  # (3,) studio angle = slope * raw + intercept
    pose_intercept: np.ndarray  # (3,)
    info: dict

    def joy(self, blendshapes: np.ndarray) -> float:
        logit = float(np.dot(self.joy_coef, blendshapes) + self.joy_intercept)
        return float(1.0 / (1.0 + np.exp(-np.clip(logit, -60, 60))))

    def pose(self, transform: np.ndarray) -> np.ndarray:
        """(yaw, pitch, roll) in degrees, in the studio's (GENKI's) convention."""
        return self.pose_slope * raw_euler(transform) + self.pose_intercept

    def to_json(self) -> dict:
        return {
            "joy": {"coef": self.joy_coef.tolist(), "intercept": self.joy_intercept},
            "pose": {"euler_order": EULER_ORDER, "slope": self.pose_slope.tolist(),
                     "intercept": self.pose_intercept.tolist()},
            "info": self.info,
        }

    def save(self, path: Path = CALIBRATION_FILE) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


@cache
def load_calibration(path: Path = CALIBRATION_FILE) -> Calibration:
    if not path.is_file():
        raise ModelFileError(
            f"{path.name} is missing from {path.parent}; it ships with the repository. "
            "Restore it with `git checkout models/` or rebuild it with `studio calibrate`."
        )
    data = json.loads(path.read_text(encoding="utf-8"))
    return Calibration(
        joy_coef=np.array(data["joy"]["coef"], dtype=np.float64),
        joy_intercept=float(data["joy"]["intercept"]),
        pose_slope=np.array(data["pose"]["slope"], dtype=np.float64),
        pose_intercept=np.array(data["pose"]["intercept"], dtype=np.float64),
        info=data.get("info", {}),
    )
