"""A classifier two-sample test in pixel space: a small CNN, trained from scratch on the
64 px chips, tells a method's faces from real ones (0.5: it cannot).

dlib's descriptor sees a face's structure; this sees what a camera leaves in the pixels
(grain, the eyes' glints, teeth), the texture a learned refiner changes. Cross-validated
(each chip is scored by a network that never trained on it); the same test on two halves
of the reals is its reference.
"""

from __future__ import annotations

import numpy as np

FOLDS = 5
EPOCHS = 12
BATCH = 32


def _net():
    from torch import nn

    def block(cin: int, cout: int) -> list:
        return [nn.Conv2d(cin, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.ReLU(),
                nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 16), *block(16, 32), *block(32, 64), *block(64, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3),
                         nn.Linear(64, 1))


def pixel_c2st(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of telling chips ``a`` (N, 64, 64, 3 uint8) from chips ``b``;
    the sets are cut to the same size first, so chance is 0.5."""
    import torch

    n = min(len(a), len(b))
    if n < 2 * FOLDS:
        return float("nan")
    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:n]]
    b = b[rng.permutation(len(b))[:n]]
    x = torch.from_numpy(np.concatenate([a, b])).permute(0, 3, 1, 2).float() / 127.5 - 1
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    folds = np.array_split(rng.permutation(2 * n), FOLDS)
    correct = 0
    torch.manual_seed(seed)
    for k, test in enumerate(folds):
        train = np.concatenate([f for j, f in enumerate(folds) if j != k])
        net = _net()
        opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
        for _ in range(EPOCHS):
            net.train()
            order = rng.permutation(train)
            for i in range(0, len(order), BATCH):
                idx = torch.from_numpy(order[i:i + BATCH])
                xb = x[idx]
                flip = torch.rand(len(idx)) < 0.5  # mirrored faces are the same question
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(
                    net(xb)[:, 0], y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        net.eval()
        with torch.no_grad():
            pred = net(x[torch.from_numpy(test)])[:, 0] > 0
        correct += int((pred.float() == y[torch.from_numpy(test)]).sum())
    return correct / (2 * n)


def real_halves(reals: np.ndarray, seed: int = 0) -> float:
    """The reference: one seeded half of the reals against the other."""
    order = np.random.default_rng(seed + 1).permutation(len(reals))
    half = len(reals) // 2
    return pixel_c2st(reals[order[:half]], reals[order[half:]], seed)
