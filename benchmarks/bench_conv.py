"""conv2d forward + backward (input and weight gradients), max_pool2d and cross_entropy, float32,
side by side with PyTorch CPU when it is installed; both limited to the same number of threads.

    python benchmarks/bench_conv.py [--threads 2] [--repeat 10] [--quick]

Timings are the best of 3 blocks of --repeat runs in a row, the blocks of ours and PyTorch's
taking turns (so a burst of other work on the machine does not hit one side only). For conv,
"fwd" is the forward pass alone and "f+b" a forward plus the backward to x and w. GFLOP/s
counts 2*N*C_out*Ho*Wo*C_in/groups*kH*kW per pass for the three passes (forward,
input-gradient, weight-gradient). Our gradients are checked against PyTorch's in the same run.
"matmuls alone" is the time of the three matrix products alone, at those flops, on contiguous
arrays: about the least that any im2col + BLAS conv can take on this NumPy, so its ratio to
PyTorch's f+b is a floor for ours.

NumPy's matrix products run on OpenBLAS, which picks its kernels from the CPU, unless the
environment variable OPENBLAS_CORETYPE forces a choice: OPENBLAS_CORETYPE=Haswell (AVX2) on a
CPU with AVX-512 halves their speed, while PyTorch's oneDNN still uses AVX-512. The first line
printed says which kernels ran; compare runs only with the same ones.
"""
import argparse
import os
import time

# bench_table, imported first, sets BLAS's thread count from --threads (read when NumPy loads)
from bench_table import THREADS, openblas_kernels  # noqa: E402

import numpy as np  # noqa: E402
from steady_memory import keep_freed_memory  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402
from workloads import CONV_SHAPES  # noqa: E402

THREADS_N = int(THREADS)


import tinygrad_edu as tg  # noqa: E402
import tinygrad_edu.functional as F  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

def best_times(fns, repeat, blocks=3):
    """{name: fn} -> {name: best seconds}. Each function runs `repeat` times in a row (so its
    thread pool is awake and the other library's is idle), in `blocks` turns, so a burst of
    other work on the machine does not hit just one of them."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(blocks):
        for name, fn in fns.items():
            fn()                                     # warm up (allocations, BLAS threads)
            for _ in range(repeat):
                start = time.perf_counter()
                fn()
                best[name] = min(best[name], time.perf_counter() - start)
    return best


def conv_flops(x_shape, w_shape, stride, padding):
    N, _, H, W = x_shape
    C_out, C_in, kH, kW = w_shape
    Ho, Wo = (H + 2 * padding - kH) // stride + 1, (W + 2 * padding - kW) // stride + 1
    return 2 * N * C_out * Ho * Wo * C_in * kH * kW


def check(ours, theirs, what):
    for name, a, b in zip(("dx", "dw"), ours, theirs):
        b = b.detach().numpy()
        err = np.abs(a.data - b).max() / (np.abs(b).max() + 1e-30)
        if not err < 1e-4:
            raise AssertionError(f"{what}: {name} differs from PyTorch's (max relative error {err:.2e})")


def matmuls_alone(x_shape, w_shape, stride, padding):
    """The three matrix products of an im2col conv, groups 1, on contiguous float32 arrays:
    forward w (O, K) @ cols (K, P), input-gradient w^T (K, O) @ g (O, P), weight-gradient
    g (O, P) @ cols^T (P, K), with K = C_in*kH*kW and P = N*Ho*Wo."""
    C_out, K = w_shape[0], int(np.prod(w_shape[1:]))
    P = conv_flops(x_shape, w_shape, stride, padding) // (2 * C_out * K)
    rng = np.random.default_rng(0)
    w, w_t = rng.standard_normal((C_out, K), np.float32), rng.standard_normal((K, C_out), np.float32)
    cols, g, cols_t = (rng.standard_normal(shape, np.float32) for shape in ((K, P), (C_out, P), (P, K)))
    # tinygrad_edu puts BLAS on one thread at its first product (it runs threads of its own, see
    # tinygrad_edu/kernels/parallel.py): give the floor BLAS's own threads back while it runs
    from threadpoolctl import ThreadpoolController
    controller = ThreadpoolController()

    def products():
        limiter = controller.limit(limits=THREADS_N, user_api="blas")
        try:
            return w @ cols, w_t @ g, g @ cols_t
        finally:
            limiter.restore_original_limits()
    return products


def bench(ours_fwd, ours_both, torch_fwd, torch_both, repeat, matmuls=None):
    fns = {"ours fwd": ours_fwd, "ours f+b": ours_both}
    if matmuls is not None:
        fns["matmuls"] = matmuls
    if torch is not None:
        fns.update({"torch fwd": torch_fwd, "torch f+b": torch_both})
    return best_times(fns, repeat)


def torch_passes(op, leaves, constants=(), grad_output=None):
    """PyTorch's forward (no graph) and forward + backward of `op` on copies of the arrays
    `leaves` (the inputs to differentiate) and `constants`; (None, None) without torch."""
    if torch is None:
        return None, None
    leaves = [torch.from_numpy(a.copy()).requires_grad_() for a in leaves]
    constants = [torch.from_numpy(a) for a in constants]
    grad_output = None if grad_output is None else torch.from_numpy(grad_output)

    def forward():
        with torch.no_grad():
            return op(*leaves, *constants)

    def forward_backward():
        return torch.autograd.grad(op(*leaves, *constants), leaves, grad_output)

    return forward, forward_backward


def bench_conv(x_shape, w_shape, stride, padding, repeat):
    rng = np.random.default_rng(0)
    x_np = rng.standard_normal(x_shape).astype(np.float32)
    w_np = (rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))).astype(np.float32)
    x, w = tg.Tensor(x_np, requires_grad=True), tg.Tensor(w_np, requires_grad=True)
    g_np = rng.standard_normal(F.conv2d(x_np, w_np, stride=stride, padding=padding).shape).astype(np.float32)

    def ours_fwd():
        with tg.no_grad():
            return F.conv2d(x, w, stride=stride, padding=padding)

    def ours_both():
        return tg.grad(F.conv2d(x, w, stride=stride, padding=padding), [x, w], grad_outputs=g_np)

    torch_fwd, torch_both = torch_passes(
        lambda x, w: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding), [x_np, w_np], (), g_np)
    if torch is not None:
        check(ours_both(), torch_both(), f"conv2d {x_shape}x{w_shape}")
    return bench(ours_fwd, ours_both, torch_fwd, torch_both, repeat,
                 matmuls_alone(x_shape, w_shape, stride, padding))


def bench_max_pool(repeat):
    x_np = np.random.default_rng(0).standard_normal((64, 32, 32, 32)).astype(np.float32)
    x, g_np = tg.Tensor(x_np, requires_grad=True), np.ones((64, 32, 16, 16), np.float32)

    def ours_both():
        return tg.grad(F.max_pool2d(x, 2), [x], grad_outputs=g_np)

    torch_fwd, torch_both = torch_passes(lambda x: torch.nn.functional.max_pool2d(x, 2), [x_np], (), g_np)
    if torch is not None:
        check(ours_both(), torch_both(), "max_pool2d")
    return bench(lambda: F.max_pool2d(x.detach(), 2), ours_both, torch_fwd, torch_both, repeat)


def bench_cross_entropy(repeat):
    rng = np.random.default_rng(0)
    logits_np, target = rng.standard_normal((512, 1000)).astype(np.float32), rng.integers(0, 1000, 512)
    logits = tg.Tensor(logits_np, requires_grad=True)

    def ours_both():
        return tg.grad(F.cross_entropy(logits, target), [logits])

    torch_fwd, torch_both = torch_passes(torch.nn.functional.cross_entropy if torch else None, [logits_np], [target])
    if torch is not None:
        check(ours_both(), torch_both(), "cross_entropy")
    return bench(lambda: F.cross_entropy(logits.detach(), target), ours_both, torch_fwd, torch_both, repeat)


def report(name, times, flops=None):
    line = f"{name:<44} ours fwd {times['ours fwd'] * 1e3:8.2f} ms  f+b {times['ours f+b'] * 1e3:8.2f} ms"
    if flops:
        line += f" ({3 * flops / times['ours f+b'] / 1e9:5.0f} GFLOP/s)"
    if "torch fwd" in times:
        line += (f" | torch fwd {times['torch fwd'] * 1e3:7.2f} ms  f+b {times['torch f+b'] * 1e3:7.2f} ms"
                 f" | ours/torch fwd {times['ours fwd'] / times['torch fwd']:4.2f}x"
                 f"  f+b {times['ours f+b'] / times['torch f+b']:4.2f}x")
    if "matmuls" in times:
        line += f" | matmuls alone {times['matmuls'] * 1e3:.2f} ms"
        if "torch f+b" in times:
            line += f" = {times['matmuls'] / times['torch f+b']:4.2f}x"
    print(line, flush=True)
    return times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=int(THREADS))
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="2 runs per block (a smoke test)")
    args = parser.parse_args()
    repeat = 2 if args.quick else args.repeat
    if torch is not None:
        torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    blas = openblas_kernels()
    forced = os.environ.get("OPENBLAS_CORETYPE")
    print(keep_freed_memory())
    print(f"threads {args.threads}; numpy {np.__version__} (OpenBLAS kernels: {blas or 'unknown'}"
          f"{f', forced by OPENBLAS_CORETYPE={forced}' if forced else ''}); "
          f"torch {torch.__version__ if torch is not None else 'not installed'}; best of 3 x {repeat} runs")
    ratios = []
    for x_shape, w_shape, stride, padding in CONV_SHAPES.values():
        times = report(f"conv2d {x_shape}x{w_shape} s{stride} p{padding}",
                       bench_conv(x_shape, w_shape, stride, padding, repeat),
                       conv_flops(x_shape, w_shape, stride, padding))
        if "torch f+b" in times:
            ratios.append(times["ours f+b"] / times["torch f+b"])
    report("max_pool2d (64, 32, 32, 32) k2", bench_max_pool(repeat))
    report("cross_entropy (512, 1000)", bench_cross_entropy(repeat))
    if ratios:
        print(f"conv2d forward+backward, ours / torch: worst {max(ratios):.2f}x (target <= 2x)")


if __name__ == "__main__":
    main()
