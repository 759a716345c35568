"""Generation speed on this machine: one sample (the slider case) and batches.

Run: ``.venv/bin/python benchmarks/bench_generator.py [--weights PATH]``.
Bars: one sample <= 10 ms median; batches >= 200 images/s.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from studio.core.analysis.attributes import Attributes
from studio.core.generator.sampler import Sampler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--weights", default=None)
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    t0 = time.perf_counter()
    gen = Sampler(args.weights)
    load_ms = (time.perf_counter() - t0) * 1e3
    attrs = Attributes(0.8, 0.3, 10.0, 0.0, 0.0)

    def one_sample_ms() -> list[float]:
        gen.sample(attrs, seed=0)  # warm-up
        times = []
        for i in range(args.runs):
            t = time.perf_counter()
            gen.sample(attrs, seed=i)
            times.append((time.perf_counter() - t) * 1e3)
        return times

    single = one_sample_ms()
    t0 = time.perf_counter()
    gen.freeze_single()
    freeze_ms = (time.perf_counter() - t0) * 1e3
    frozen = one_sample_ms()
    print(f"generator {gen.path.name} on {gen.device_name}, torch threads "
          f"{torch.get_num_threads()}, {os.cpu_count()} cores, loaded in {load_ms:.0f} ms")
    print(f"  one sample          median {np.median(single):6.2f} ms   "
          f"p95 {np.percentile(single, 95):6.2f} ms")
    print(f"  one sample, frozen  median {np.median(frozen):6.2f} ms   "
          f"p95 {np.percentile(frozen, 95):6.2f} ms   (the window's path; traced in "
          f"{freeze_ms:.0f} ms)")
    single = min(single, frozen, key=np.median)
    best = 0.0
    for batch in (16, 64, 256):
        gen.sample(attrs, seed=0, n=batch)
        t = time.perf_counter()
        reps = max(1, 512 // batch)
        for r in range(reps):
            gen.sample(attrs, seed=r, n=batch)
        rate = batch * reps / (time.perf_counter() - t)
        best = max(best, rate)
        print(f"  batch {batch:<4}          {rate:8.0f} images/s")
    ok_single = np.median(single) <= 10
    print(f"bar: one sample <= 10 ms median: {'PASS' if ok_single else 'FAIL'}; "
          f"batches >= 200 images/s: {'PASS' if best >= 200 else 'FAIL'}")


if __name__ == "__main__":
    main()
