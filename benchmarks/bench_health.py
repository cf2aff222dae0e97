"""What watching costs: a training step of the seed CNN (forward, backward, SGD), plain, with a
tinygrad_edu.health.Monitor step after it, and inside detect_anomaly().

    python benchmarks/bench_health.py [--batch 64] [--steps 300]

Prints the time per step of each (10th percentile and median) and its ratio to the plain step
(1.00 = free). The three variants take turns step by step, so a busy machine slows them alike.
"""
import argparse
import contextlib
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
    """A function timing one training step of its own model, with the variant's watching."""
    params = models.init_params("seed", rng=0)
    optimizer = optim.SGD(params, lr=0.01, momentum=0.9)
    monitor = tg.health.Monitor(params) if variant == "monitor" else None
    anomaly = tg.detect_anomaly if variant == "anomaly" else contextlib.nullcontext
    count = [0]

    def timed_step():
        x, y = batches[count[0] % len(batches)]
        count[0] += 1
        start = time.perf_counter()
        with anomaly():
            loss = models.loss_fn(params, x, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if monitor is not None:
            monitor.step(loss)
        return time.perf_counter() - start
    return timed_step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()
    print(keep_freed_memory())
    x, y, _, _ = load_mnist()
    batches = [(Tensor(x[i:i + args.batch]), y[i:i + args.batch]) for i in range(0, 20 * args.batch, args.batch)]
    variants = ("plain", "monitor", "anomaly")
    steps = {v: make_step(batches, v) for v in variants}
    times = {v: [] for v in variants}
    for _ in range(args.steps):                    # one step of each in turn: load hits all alike
        for v in variants:
            times[v].append(steps[v]())
    times = {v: np.asarray(t[3:]) for v, t in times.items()}   # the first steps warm up
    print(f"seed CNN training step, batch {args.batch}, {args.steps} steps of each, interleaved:")
    for v in variants:
        low, mid = np.percentile(times[v], 10), np.median(times[v])
        print(f"  {v:<8} 10th percentile {1e3 * low:7.2f} ms (ratio {low / np.percentile(times['plain'], 10):4.2f})"
              f"   median {1e3 * mid:7.2f} ms (ratio {mid / np.median(times['plain']):4.2f})")


if __name__ == "__main__":
    main()
