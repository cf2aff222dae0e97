"""Issue 19's table: every workload's time as a ratio to PyTorch's, and peak memory of a training step.

    python benchmarks/bench_table.py [--rounds 7] [--threads 2] [--only lenet64,conv3x3] [--no-memory]

Time: for each workload, `--rounds` rounds; in each round ours and PyTorch's take turns (which
goes first alternates), each timing a block of steps after a warm-up. The ratio is ours / PyTorch's
per round; the table shows the median ratio and its spread (min-max over the rounds), so a burst
of other work on a shared machine moves one round, not the result.

Memory: the peak RSS growth of training steps, each framework in fresh processes (`--memory-child`;
the median of --memory-runs):
RSS when the model and the batch are ready, then three steps, then the process's high-water mark
(Linux's VmHWM); the growth is the difference. PyTorch is optional: without it only our numbers are printed.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def _arg(name, default):
    """`--name VALUE` or `--name=VALUE`, read before argparse runs: BLAS reads its thread count
    when NumPy loads, so --threads must be known before the import."""
    for i, arg in enumerate(sys.argv):
        if arg == name and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


THREADS = _arg("--threads", "2")
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):   # read at numpy's import
    os.environ[_var] = THREADS

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
if not os.environ.get("PYTHONPATH"):            # else PYTHONPATH says which copy of the package to time
    sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)
from workloads import make_ours, make_torch  # noqa: E402

# (workload, label, target ratio)
TABLE = [
    ("lenet10", "seed LeNet, batch 10", 0.9),
    ("lenet64", "seed LeNet, batch 64", 1.0),
    ("lenet256", "seed LeNet, batch 256", 1.2),
    ("cnn32_64", "32x32 CNN (conv32-conv64-fc), batch 64", 1.3),
    ("conv5x5_c1", "conv2d f+b (64,1,28,28)x(3,1,5,5)", None),
    ("conv5x5_c3", "conv2d f+b (64,3,12,12)x(6,3,5,5)", 1.2),
    ("conv3x3", "conv2d f+b (64,32,32,32)x(64,32,3,3) p1", 1.3),
    ("conv3x3_s2", "conv2d f+b (32,64,16,16)x(128,64,3,3) s2 p1", 1.3),
    ("ce10", "cross_entropy f+b (256, 10)", 1.5),
    ("ce1000", "cross_entropy f+b (256, 1000)", 1.5),
    ("wide64", "wide model step, batch 64", 1.3),
    ("chain1000", "engine: 1,000-op chain f+b", 0.7),
]
MEMORY = [("cnn32_256", "32x32 CNN step, batch 256"), ("cnn32_64", "32x32 CNN step, batch 64"),
          ("lenet256", "seed LeNet step, batch 256")]


def openblas_kernels():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (threadpoolctl missing)"
    info = [i for i in threadpool_info() if i.get("internal_api") == "openblas"]
    return ", ".join(f"{i.get('architecture')} ({i.get('num_threads')} threads)" for i in info) or "none"


def block_time(step, seconds=0.15, min_steps=3):
    """Mean time of one step over a block of at least `min_steps` steps and about `seconds`."""
    start, n = time.perf_counter(), 0
    while n < min_steps or time.perf_counter() - start < seconds:
        step()
        n += 1
    return (time.perf_counter() - start) / n


def compare(name, rounds, have_torch):
    ours = make_ours(name)
    theirs = make_torch(name) if have_torch else None
    for _ in range(2):                                  # warm up both (allocations, thread pools)
        ours()
        theirs and theirs()
    t_ours, t_torch = [], []
    for r in range(rounds):
        sides = [(ours, t_ours), (theirs, t_torch)] if theirs else [(ours, t_ours)]
        for step, times in (sides if r % 2 == 0 else sides[::-1]):
            times.append(block_time(step))
    return np.array(t_ours), (np.array(t_torch) if theirs else None)


def _status_kb(field):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))


def memory_child(side, name):
    """Run in a fresh process: print the peak RSS growth (bytes) over three training steps: the
    high-water mark (VmHWM, reset to the current RSS first) minus the RSS before the first step."""
    step = make_ours(name) if side == "ours" else make_torch(name)
    try:
        with open("/proc/self/clear_refs", "w") as f:          # "5": reset VmHWM to the current RSS
            f.write("5")
    except OSError:
        pass
    rss = _status_kb("VmRSS")
    for _ in range(3):
        step()
    print(json.dumps({"growth": (_status_kb("VmHWM") - rss) * 1024}))


def measure_memory(side, name):
    out = subprocess.run([sys.executable, __file__, "--memory-child", side, name, "--threads", THREADS],
                         capture_output=True, text=True, env=os.environ)
    if out.returncode:
        raise RuntimeError(out.stderr)
    return json.loads(out.stdout.strip().splitlines()[-1])["growth"]


def main():
    if "--memory-child" in sys.argv:
        i = sys.argv.index("--memory-child")
        return memory_child(sys.argv[i + 1], sys.argv[i + 2])
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=int(THREADS))
    parser.add_argument("--only", default=None, help="comma-separated workload names")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--no-time", action="store_true")
    parser.add_argument("--memory-runs", type=int, default=3, help="fresh processes per side (the median is kept)")
    args = parser.parse_args()
    try:
        import torch
        torch.set_num_threads(args.threads)
        version = torch.__version__
    except ImportError:
        torch, version = None, None
    import tinygrad_edu
    print(f"tinygrad_edu from {os.path.dirname(tinygrad_edu.__file__)}; numpy {np.__version__}, "
          f"OpenBLAS kernels: {openblas_kernels()}; torch {version or 'not installed'}; {args.threads} threads; "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}")
    only = set(args.only.split(",")) if args.only else None
    if not args.no_time:
        print(f"\n| workload (fwd+bwd+SGD unless noted) | ours ms | torch ms | ratio (median of {args.rounds}) "
              f"| spread | target |\n|---|---|---|---|---|---|")
        for name, label, target in TABLE:
            if only and name not in only:
                continue
            ours, theirs = compare(name, args.rounds, torch is not None)
            row = f"| {label} | {np.median(ours) * 1e3:.2f} |"
            if theirs is not None:
                ratios = ours / theirs
                row += (f" {np.median(theirs) * 1e3:.2f} | {np.median(ratios):.2f} | "
                        f"{ratios.min():.2f}-{ratios.max():.2f} | {'<= %.1f' % target if target else '-'} |")
            else:
                row += " - | - | - | - |"
            print(row, flush=True)
    if not args.no_memory:
        print(f"\n| peak RSS growth of a training step (median of {args.memory_runs} fresh processes each) "
              "| ours MB | torch MB | ratio | target |"
              "\n|---|---|---|---|---|")
        for name, label in MEMORY:
            if only and name not in only:
                continue
            ours = float(np.median([measure_memory("ours", name) for _ in range(args.memory_runs)]))
            row = f"| {label} | {ours / 2**20:.1f} |"
            if torch is not None:
                theirs = float(np.median([measure_memory("torch", name) for _ in range(args.memory_runs)]))
                row += f" {theirs / 2**20:.1f} | {ours / theirs:.2f} | <= 1.3 |"
            else:
                row += " - | - | - |"
            print(row, flush=True)


if __name__ == "__main__":
    main()
