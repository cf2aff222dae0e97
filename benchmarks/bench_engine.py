"""Engine overhead, side by side with PyTorch CPU in the same run (alone when torch is missing).

    python benchmarks/bench_engine.py [--threads 2] [--repeats 5]

Times (best of --repeats): a 10,000-op elementwise chain on small arrays, forward and backward;
the backward of a 100,000-op chain; a small MLP's training step. Ratios are ours / PyTorch's:
below 1.0 we are faster. Machines are noisy; compare ratios from one run, not absolute times.
"""
import argparse
import os
import sys
import time

THREADS = "2"
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, THREADS)  # before NumPy loads its BLAS

import numpy as np  # noqa: E402
from steady_memory import keep_freed_memory  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from tinygrad_edu import Tensor  # noqa: E402
from workloads import chain  # noqa: E402 (the chain bench_table times, written once)

try:
    import torch
except ImportError:
    torch = None


def best_time(fn, repeats):
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


# ---- the workloads, written once for each framework -----------------------------------------
def ours_chain(n_ops, backward):
    x = Tensor(np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32), requires_grad=True)
    other = Tensor(np.full((4, 4), 1.001, np.float32), requires_grad=True)

    def run():
        loss = chain(x, other, n_ops)
        if backward:
            loss.backward()
    return run


def torch_chain(n_ops, backward):
    x = torch.randn(4, 4, requires_grad=True)
    other = torch.full((4, 4), 1.001, requires_grad=True)

    def run():
        loss = chain(x, other, n_ops)
        if backward:
            loss.backward()
    return run


def backward_only(make_loss, backward):
    """Times backward alone: the graph is built outside the timed region, fresh for each run."""
    def timed(repeats):
        times = []
        for _ in range(repeats + 1):
            loss = make_loss()
            start = time.perf_counter()
            backward(loss)
            times.append(time.perf_counter() - start)
        return min(times[1:])
    return timed


def mlp_step_ours(batch=64, sizes=(784, 128, 10)):
    rng = np.random.default_rng(0)
    w1 = Tensor(rng.standard_normal((sizes[0], sizes[1])).astype(np.float32) * 0.05, requires_grad=True)
    w2 = Tensor(rng.standard_normal((sizes[1], sizes[2])).astype(np.float32) * 0.05, requires_grad=True)
    x = Tensor(rng.standard_normal((batch, sizes[0])).astype(np.float32))
    y = Tensor(rng.standard_normal((batch, sizes[2])).astype(np.float32))

    def step():
        loss = (((x @ w1).relu() @ w2 - y) ** 2).mean()
        loss.backward()
        for p in (w1, w2):
            p.data -= 0.01 * p.grad.data
            p.grad = None
    return step


def mlp_step_torch(batch=64, sizes=(784, 128, 10)):
    w1 = (torch.randn(sizes[0], sizes[1]) * 0.05).requires_grad_()
    w2 = (torch.randn(sizes[1], sizes[2]) * 0.05).requires_grad_()
    x, y = torch.randn(batch, sizes[0]), torch.randn(batch, sizes[2])

    def step():
        loss = (((x @ w1).relu() @ w2 - y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            for p in (w1, w2):
                p -= 0.01 * p.grad
                p.grad = None
    return step


def report(name, ours, theirs, per=None, unit="ms"):
    scale = 1e3 if unit == "ms" else 1e6
    fmt = lambda t: f"{t / (per or 1) * scale:9.2f} {unit}"  # noqa: E731
    line = f"{name:<42} ours {fmt(ours)}"
    if theirs is not None:
        line += f"   torch {fmt(theirs)}   ratio {ours / theirs:5.2f}"
    print(line)
    return None if theirs is None else ours / theirs


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if torch is not None:
        torch.set_num_threads(int(THREADS))
    print(keep_freed_memory())
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, {THREADS} threads")
    n = 10_000
    print("\n10,000-op elementwise chain on (4, 4) float32, time per op:")
    report("  forward", best_time(ours_chain(n, False), args.repeats),
           torch and best_time(torch_chain(n, False), args.repeats), per=n, unit="us")
    report("  forward + backward", best_time(ours_chain(n, True), args.repeats),
           torch and best_time(torch_chain(n, True), args.repeats), per=n, unit="us")

    n = 100_000
    x = Tensor(np.ones((4, 4), np.float32), requires_grad=True)
    ours = backward_only(lambda: chain(x, x, n), lambda loss: loss.backward())(min(args.repeats, 3))
    theirs = None
    if torch is not None:
        xt = torch.ones(4, 4, requires_grad=True)
        theirs = backward_only(lambda: chain(xt, xt, n), lambda loss: loss.backward())(min(args.repeats, 3))
    print("\n100,000-op chain, backward only:")
    report("  backward (whole chain)", ours, theirs, unit="ms")

    print("\nMLP training step (batch 64, 784-128-10, relu, MSE, SGD):")
    report("  step", best_time(mlp_step_ours(), args.repeats * 4),
           torch and best_time(mlp_step_torch(), args.repeats * 4), unit="ms")


if __name__ == "__main__":
    main()
