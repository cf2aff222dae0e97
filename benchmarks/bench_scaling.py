"""How a training step's cost grows with the work: batch size 1..512 and image size, for the seed
LeNet and the 32x32 CNN, time per image and peak memory, ours against PyTorch's.

    python benchmarks/bench_scaling.py [--rounds 3] [--threads 2] [--out benchmarks/scaling.png] [--quick]

Time: each point is the median over --rounds rounds of one block of steps each side, the sides
taking turns (as in bench_table.py). Memory: the peak RSS growth of three steps, each side in a
fresh process (bench_table.py's --memory-child). Prints a Markdown table and writes a PNG with
four panels: time per image and peak memory against the batch size (28x28 LeNet, 32x32 CNN),
and against the image side at batch 64.
"""
import argparse
import os
import sys


HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# bench_table, imported first, sets BLAS's thread count from --threads (read when NumPy loads)
# and finds the package
from bench_table import THREADS, compare, measure_memory, openblas_kernels  # noqa: E402

import numpy as np  # noqa: E402

BATCHES = [1, 4, 16, 64, 128, 256, 512]
SIDES = {"lenet": [28, 36, 44, 60], "cnn32": [16, 32, 48, 64]}
LABELS = {"lenet": "seed LeNet", "cnn32": "32x32 CNN"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=int(THREADS))
    parser.add_argument("--out", default=os.path.join(HERE, "scaling.png"))
    parser.add_argument("--quick", action="store_true", help="fewer points (a smoke test)")
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(args.threads)
        have_torch = True
    except ImportError:
        have_torch = False
    batches = [1, 16, 64] if args.quick else BATCHES
    sides = {k: v[:2] for k, v in SIDES.items()} if args.quick else SIDES
    print(f"OpenBLAS kernels: {openblas_kernels()}; {args.threads} threads; rounds {args.rounds}")
    print("\n| model | batch | side | ours ms/img | torch ms/img | ratio | ours MB | torch MB | mem ratio |"
          "\n|---|---|---|---|---|---|---|---|---|")
    points = []
    for model in ("lenet", "cnn32"):
        default_side = 28 if model == "lenet" else 32
        cases = [(b, default_side) for b in batches] + [(64, s) for s in sides[model] if s != default_side]
        for batch, side in cases:
            name = f"{model}:{batch}:{side}"
            ours, theirs = compare(name, args.rounds, have_torch)
            ours_t = float(np.median(ours)) / batch
            theirs_t = float(np.median(theirs)) / batch if theirs is not None else None
            ours_m = theirs_m = None
            if not args.no_memory:
                ours_m = measure_memory("ours", name) / 2**20
                theirs_m = measure_memory("torch", name) / 2**20 if have_torch else None
            points.append((model, batch, side, ours_t, theirs_t, ours_m, theirs_m))
            fmt = lambda v, f: "-" if v is None else format(v, f)  # noqa: E731
            print(f"| {LABELS[model]} | {batch} | {side} | {ours_t * 1e3:.3f} | {fmt(theirs_t and theirs_t * 1e3, '.3f')} "
                  f"| {fmt(theirs_t and np.median(ours / theirs), '.2f')} | {fmt(ours_m, '.1f')} | {fmt(theirs_m, '.1f')} "
                  f"| {fmt(theirs_m and ours_m / max(theirs_m, 0.1), '.2f')} |", flush=True)
    plot(points, args.out, args.threads)
    print(f"\nwrote {args.out}")


def plot(points, path, threads):
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    fig = Figure(figsize=(11, 7.5), layout="constrained")
    axes = fig.subplots(2, 2)
    for column, (x_index, default, xlabel) in enumerate(((1, None, "batch size"), (2, 64, "image side (batch 64)"))):
        for model, color in (("lenet", "tab:blue"), ("cnn32", "tab:orange")):
            default_side = 28 if model == "lenet" else 32
            rows = [p for p in points if p[0] == model and (p[2] == default_side if x_index == 1 else p[1] == 64)]
            rows.sort(key=lambda p: p[x_index])
            xs = [p[x_index] for p in rows]
            for row, (ours_i, theirs_i, unit, scale) in enumerate(((3, 4, "ms per image", 1e3), (5, 6, "peak MB", 1))):
                ax = axes[row, column]
                ours = [p[ours_i] for p in rows]
                if all(v is not None for v in ours):
                    ax.plot(xs, [v * scale for v in ours], "o-", color=color, label=f"{LABELS[model]}: tinygrad_edu")
                theirs = [p[theirs_i] for p in rows]
                if all(v is not None for v in theirs):
                    ax.plot(xs, [v * scale for v in theirs], "s--", color=color, alpha=0.6,
                            label=f"{LABELS[model]}: PyTorch")
                ax.set_xlabel(xlabel)
                ax.set_ylabel(unit)
                if x_index == 1:
                    ax.set_xscale("log", base=2)
                ax.set_yscale("log")
                ax.grid(True, which="both", alpha=0.3)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle(f"Training step (fwd + bwd + SGD), {threads} threads: time per image and peak memory growth")
    fig.savefig(path, dpi=90)


if __name__ == "__main__":
    main()
