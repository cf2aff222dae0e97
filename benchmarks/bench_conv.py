"""conv2d forward + backward (input and weight gradients), max_pool2d and cross_entropy, float32,
side by side with PyTorch CPU when it is installed; both limited to the same number of threads.

    python benchmarks/bench_conv.py [--threads 2] [--repeat 15] [--quick]

Each timing is the best of --repeat runs (the least disturbed by other work on the machine). For
conv, "fwd" is the forward pass alone and "f+b" one forward plus one backward to x and w. GFLOP/s
counts 2*N*C_out*Ho*Wo*C_in/groups*kH*kW per pass (forward, input-gradient and weight-gradient
each do that many multiply-adds). Our gradients are checked against PyTorch's in the same run.
"""
import argparse
import os
import sys
import time

THREADS = "2"
for i, arg in enumerate(sys.argv):                   # the BLAS reads these once, at numpy's import
    if arg == "--threads" and i + 1 < len(sys.argv):
        THREADS = sys.argv[i + 1]
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[var] = THREADS

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import tinygrad_edu as tg  # noqa: E402
import tinygrad_edu.functional as F  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

try:
    from threadpoolctl import threadpool_limits
except ImportError:
    threadpool_limits = None

CONV_SHAPES = [  # (x shape, w shape, stride, padding)
    ((64, 1, 28, 28), (3, 1, 5, 5), 1, 0),
    ((64, 3, 12, 12), (6, 3, 5, 5), 1, 0),
    ((64, 32, 32, 32), (64, 32, 3, 3), 1, 1),
    ((32, 64, 16, 16), (128, 64, 3, 3), 2, 1),
]


def best_time(fn, repeat):
    fn()                                             # warm up (allocations, BLAS threads)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def conv_flops(x_shape, w_shape, stride, padding):
    N, _, H, W = x_shape
    C_out, C_in, kH, kW = w_shape
    Ho, Wo = (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1
    return 2 * N * C_out * Ho * Wo * C_in * kH * kW


def bench_conv(x_shape, w_shape, stride, padding, repeat):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(x_shape).astype(np.float32)
    w_np = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    x, w = tg.Tensor(x_np, requires_grad=True), tg.Tensor(w_np, requires_grad=True)
    g_np = rng.standard_normal(F.conv2d(x_np, w_np, stride=stride, padding=padding).shape).astype(np.float32)

    def ours_forward():
        with tg.no_grad():
            return F.conv2d(x, w, stride=stride, padding=padding)

    def ours_both():
        return tg.grad(F.conv2d(x, w, stride=stride, padding=padding), [x, w], grad_outputs=g_np)

    rows = {"ours": (best_time(ours_forward, repeat), best_time(ours_both, repeat))}
    if torch is not None:
        tx, tw, tg_ = (torch.from_numpy(a.copy()).requires_grad_(r) for a, r in ((x_np, True), (w_np, True), (g_np, False)))

        def torch_forward():
            with torch.no_grad():
                return torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding)

        def torch_both():
            return torch.autograd.grad(torch.nn.functional.conv2d(tx, tw, stride=stride, padding=padding), [tx, tw], tg_)

        rows["torch"] = (best_time(torch_forward, repeat), best_time(torch_both, repeat))
        check(ours_both(), torch_both(), f"conv2d {x_shape}x{w_shape}")
    return rows


def check(ours, theirs, what):
    for name, a, b in zip(("dx", "dw"), ours, theirs):
        b = b.detach().numpy()
        err = np.abs(a.data - b).max() / (np.abs(b).max() + 1e-30)
        if not err < 1e-4:
            raise AssertionError(f"{what}: {name} differs from PyTorch's (max relative error {err:.2e})")


def bench_max_pool(repeat):
    x_np = np.random.default_rng(0).standard_normal((64, 32, 32, 32)).astype(np.float32)
    x = tg.Tensor(x_np, requires_grad=True)
    g_np = np.ones((64, 32, 16, 16), np.float32)
    rows = {"ours": (best_time(lambda: F.max_pool2d(x.detach(), 2), repeat),
                     best_time(lambda: tg.grad(F.max_pool2d(x, 2), [x], grad_outputs=g_np), repeat))}
    if torch is not None:
        tx, tg_ = torch.from_numpy(x_np.copy()).requires_grad_(), torch.from_numpy(g_np)
        with torch.no_grad():
            fwd = best_time(lambda: torch.nn.functional.max_pool2d(tx, 2), repeat)
        rows["torch"] = (fwd, best_time(lambda: torch.autograd.grad(torch.nn.functional.max_pool2d(tx, 2), [tx], tg_), repeat))
        check(tg.grad(F.max_pool2d(x, 2), [x], grad_outputs=g_np),
              torch.autograd.grad(torch.nn.functional.max_pool2d(tx, 2), [tx], tg_), "max_pool2d")
    return rows


def bench_cross_entropy(repeat):
    rng = np.random.default_rng(0)
    logits_np, target = rng.standard_normal((512, 1000)).astype(np.float32), rng.integers(0, 1000, 512)
    logits = tg.Tensor(logits_np, requires_grad=True)
    rows = {"ours": (best_time(lambda: F.cross_entropy(logits.detach(), target), repeat),
                     best_time(lambda: tg.grad(F.cross_entropy(logits, target), [logits]), repeat))}
    if torch is not None:
        tl, tt = torch.from_numpy(logits_np.copy()).requires_grad_(), torch.from_numpy(target)
        with torch.no_grad():
            fwd = best_time(lambda: torch.nn.functional.cross_entropy(tl, tt), repeat)
        rows["torch"] = (fwd, best_time(lambda: torch.autograd.grad(torch.nn.functional.cross_entropy(tl, tt), [tl]), repeat))
        check(tg.grad(F.cross_entropy(logits, target), [logits]),
              torch.autograd.grad(torch.nn.functional.cross_entropy(tl, tt), [tl]), "cross_entropy")
    return rows


def report(name, rows, flops=None):
    ours_fwd, ours_both = rows["ours"]
    line = f"{name:<42} ours fwd {ours_fwd * 1e3:8.2f} ms  f+b {ours_both * 1e3:8.2f} ms"
    if flops:
        line += f" ({3 * flops / ours_both / 1e9:6.1f} GFLOP/s)"
    if "torch" in rows:
        torch_fwd, torch_both = rows["torch"]
        line += (f" | torch fwd {torch_fwd * 1e3:8.2f} ms  f+b {torch_both * 1e3:8.2f} ms"
                 f" | ratio fwd {ours_fwd / torch_fwd:5.2f}x  f+b {ours_both / torch_both:5.2f}x")
    print(line, flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=int(THREADS))
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--quick", action="store_true", help="3 repeats (a smoke test)")
    args = parser.parse_args()
    repeat = 3 if args.quick else args.repeat
    if torch is not None:
        torch.set_num_threads(args.threads)
    limits = threadpool_limits(args.threads) if threadpool_limits else None
    print(f"threads {args.threads}, numpy {np.__version__}, "
          f"torch {torch.__version__ if torch is not None else 'not installed'}; best of {repeat}")
    ratios = []
    for x_shape, w_shape, stride, padding in CONV_SHAPES:
        rows = report(f"conv2d {x_shape}x{w_shape} s{stride} p{padding}",
                      bench_conv(x_shape, w_shape, stride, padding, repeat),
                      conv_flops(x_shape, w_shape, stride, padding))
        if "torch" in rows:
            ratios.append(rows["ours"][1] / rows["torch"][1])
    report("max_pool2d (64, 32, 32, 32) k2", bench_max_pool(repeat))
    report("cross_entropy (512, 1000)", bench_cross_entropy(repeat))
    if ratios:
        print(f"conv2d forward+backward, ours / torch: worst {max(ratios):.2f}x (target <= 2x)")
    if limits is not None:
        limits.unregister() if hasattr(limits, "unregister") else None


if __name__ == "__main__":
    main()
