"""The one progress protocol: core functions report ``progress(done, total, message)`` and
honour ``stop()``; nothing in the core draws a bar (the import contracts forbid tqdm)."""

from __future__ import annotations

import numpy as np
import torch

from studio.core.generator.networks import BeganConfig
from studio.core.generator.training import Trainer, TrainSettings
from studio.core.generator.training_data import TrainingSet
from studio.core.progress import track


class Recorder:
    """A progress callable that keeps every report."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, str]] = []

    def __call__(self, done: int, total: int, message: str) -> None:
        self.calls.append((done, total, message))

    def stage(self, name: str) -> list[tuple[int, int]]:
        return [(d, t) for d, t, m in self.calls if m.split(": ", 1)[0] == name]


def test_track_reports_each_item_once_done():
    seen = Recorder()
    out = []
    for x in track(["a", "b", "c"], seen, "letters"):
        out.append(x)
        assert seen.calls[-1][0] == len(out) - 1  # reported after the work, not before
    assert out == ["a", "b", "c"]
    assert seen.calls == [(0, 3, "letters"), (1, 3, "letters"), (2, 3, "letters"),
                          (3, 3, "letters")]
    assert list(track(iter(range(2)), None, "quiet")) == [0, 1]  # no one watching


def test_training_reports_seconds_and_stops_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    data = TrainingSet(rng.integers(0, 255, (40, 64, 64, 3), dtype=np.uint8),
                       rng.random((40, 5)).astype(np.float32), np.zeros(40, np.int8), {})
    trainer = Trainer(data, tmp_path, TrainSettings(batch=4, config=BeganConfig(base_channels=4)),
                      torch.device("cpu"))
    seen = Recorder()
    steps = []

    def stop() -> bool:
        steps.append(trainer.step)
        return trainer.step >= 30

    trainer.run(minutes=10, grid_every_s=1e9, progress=seen, stop=stop)
    assert trainer.step == 30  # ten minutes asked, stopped after 30 steps
    assert seen.calls[0] == (0, 600, "seconds")
    details = [m for _, _, m in seen.calls if m.startswith("seconds: step 25 ")]
    assert details and "img/s" in details[0]
    assert (tmp_path / "state.pt").is_file()  # a stopped run is saved, not lost
