"""What watching costs: a training step of the seed CNN (forward, backward, SGD), plain, with a
tinygrad_edu.health.Monitor step after it, and inside detect_anomaly().

    python benchmarks/bench_health.py [--batch 64] [--steps 30] [--repeats 7]

Prints the best time per step of each and its ratio to the plain step (1.00 = free). The three
variants are interleaved repeat by repeat, so a busy machine slows them alike.
"""
import argparse
import os
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")  # before NumPy loads its BLAS

import numpy as np  # noqa: E402
from steady_memory import keep_freed_memory  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu import Tensor, models, optim  # noqa: E402
from tinygrad_edu.datasets import load_mnist  # noqa: E402


def make_step(batches, variant):
    params = models.init_params("seed", rng=0)
    optimizer = optim.SGD(params, lr=0.01, momentum=0.9)
    monitor = tg.health.Monitor(params) if variant == "monitor" else None

    def step(x, y):
        loss = models.loss_fn(params, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if monitor is not None:
            monitor.step(loss)

    def run(steps):
        start = time.perf_counter()
        if variant == "anomaly":
            with tg.detect_anomaly():
                for i in range(steps):
                    step(*batches[i % len(batches)])
        else:
            for i in range(steps):
                step(*batches[i % len(batches)])
        return (time.perf_counter() - start) / steps
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(keep_freed_memory())
    x, y, _, _ = load_mnist()
    batches = [(Tensor(x[i:i + args.batch]), y[i:i + args.batch]) for i in range(0, 20 * args.batch, args.batch)]
    variants = ("plain", "monitor", "anomaly")
    runs = {v: make_step(batches, v) for v in variants}
    times = {v: [] for v in variants}
    for run in runs.values():
        run(3)                                     # warm up
    for _ in range(args.repeats):
        for v in variants:
            times[v].append(runs[v](args.steps))
    best = {v: min(t) for v, t in times.items()}      # the least disturbed run of each
    print(f"seed CNN training step, batch {args.batch} (best of {args.repeats} x {args.steps} steps):")
    for v in variants:
        print(f"  {v:<8} {1e3 * best[v]:7.2f} ms   ratio {best[v] / best['plain']:5.2f}")


if __name__ == "__main__":
    main()
