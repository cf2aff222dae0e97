"""One training step (forward, backward, SGD update) of the MNIST CNNs: tinygrad_edu vs PyTorch CPU.

    python benchmarks/bench_train.py [--steps 30] [--repeats 5] [--threads 2]

The same architecture, batch and data in both, each limited to the same number of threads (BLAS
threads for NumPy, intra-op threads for PyTorch). Prints images/s for both and the ratio of step
times (ours / PyTorch's; 1.0 = as fast, the target is <= 1.5 at batch 64). PyTorch is optional:
without it only our numbers are printed.
"""
import argparse
import os
import sys
import time

# BLAS reads its thread count when NumPy is first imported, so set it before that import
_threads = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--threads=")), None)
if _threads is None and "--threads" in sys.argv:
    _threads = sys.argv[sys.argv.index("--threads") + 1]
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = _threads or "2"

import numpy as np  # noqa: E402
from steady_memory import keep_freed_memory  # noqa: E402

from tinygrad_edu import Tensor, models, optim  # noqa: E402
from tinygrad_edu.datasets import load_mnist  # noqa: E402

CASES = [("seed", 10), ("seed", 64), ("seed", 256), ("wide", 64)]


def time_steps(step, batches, steps, repeats):
    """Median over `repeats` of the mean time of `steps` calls of step(x, y), after a warm-up."""
    for x, y in batches[:3]:
        step(x, y)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(steps):
            step(*batches[i % len(batches)])
        times.append((time.perf_counter() - start) / steps)
    return float(np.median(times))


def ours(model, batches, steps, repeats):
    params = models.init_params(model, rng=0)
    optimizer = optim.SGD(params, lr=0.01)
    batches = [(Tensor(x), y) for x, y in batches]

    def step(x, y):
        loss = models.loss_fn(params, x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, batches, steps, repeats)


def pytorch(model, batches, steps, repeats):
    import torch
    from torch import nn

    filters1, filters2, hidden = models.ARCHITECTURES[model]
    net = nn.Sequential(
        nn.Conv2d(1, filters1, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(filters1, filters2, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(filters2 * 16, hidden), nn.ReLU(), nn.Linear(hidden, 10))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01)
    batches = [(torch.from_numpy(x), torch.from_numpy(y)) for x, y in batches]

    def step(x, y):
        loss = nn.functional.cross_entropy(net(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return time_steps(step, batches, steps, repeats)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="steps per timing (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="timings per case, the median is kept")
    parser.add_argument("--threads", type=int, default=2, help="threads for NumPy's BLAS and for PyTorch")
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(args.threads)
        torch_version = torch.__version__
    except ImportError:
        torch_version = None

    x_train, y_train, _, _ = load_mnist()
    print(keep_freed_memory())
    print(f"train step (forward + backward + SGD), {args.threads} threads, NumPy {np.__version__}, "
          f"PyTorch {torch_version or 'not installed'}")
    print(f"{'model':<6}{'batch':>6}{'ours img/s':>12}{'torch img/s':>13}{'ours ms':>10}{'torch ms':>10}"
          f"{'ratio':>8}")
    for model, batch in CASES:
        index = np.arange(20 * batch).reshape(20, batch) % len(x_train)   # 20 distinct batches
        batches = [(x_train[i], y_train[i]) for i in index]
        ours_s = ours(model, batches, args.steps, args.repeats)
        torch_s = pytorch(model, batches, args.steps, args.repeats) if torch_version else None
        row = f"{model:<6}{batch:>6}{batch / ours_s:>12.0f}"
        if torch_s:
            row += f"{batch / torch_s:>13.0f}{ours_s * 1e3:>10.2f}{torch_s * 1e3:>10.2f}{ours_s / torch_s:>7.2f}x"
        else:
            row += f"{'-':>13}{ours_s * 1e3:>10.2f}{'-':>10}{'-':>8}"
        print(row, flush=True)


if __name__ == "__main__":
    main()
