"""Where a training step's time goes: a per-op timer of our own, and cProfile, on the benchmark workloads.

    python benchmarks/profile_ops.py [--workload lenet64] [--steps 20] [--cprofile 25]

The per-op timer wraps every primitive's NumPy forward and each of its VJPs (without touching the
package: it swaps the function a primitive closes over, and its tuple of VJPs) and adds up the
time spent in each, exclusive of the ops a VJP calls. Workloads: any name benchmarks/workloads.py
knows (lenet64, wide64, cnn32 = cnn32_64, conv3x3, ce1000, chain1000, lenet:<batch>:<side>, ...).
"""
import argparse
import cProfile
import collections
import gc
import os
import pstats
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")


if not os.environ.get("PYTHONPATH"):            # else PYTHONPATH says which copy of the package to profile
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workloads import make_ours  # noqa: E402


class OpTimer:
    """Exclusive time per (op, pass): a stack of running timers, the caller's paused while a
    nested op runs (a VJP is written with ops)."""

    def __init__(self):
        self.total = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.stack = []

    def wrap(self, key, fn):
        def timed(*args, **kwargs):
            now = time.perf_counter()
            if self.stack:
                self.stack[-1][1] += now - self.stack[-1][2]
            self.stack.append([key, 0.0, now])
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                k, spent, since = self.stack.pop()
                self.total[k] += spent + end - since
                self.calls[k] += 1
                if self.stack:
                    self.stack[-1][2] = end
        return timed

    def install(self):
        prims = [o for o in gc.get_objects() if callable(o) and hasattr(o, "vjps") and hasattr(o, "fn")
                 and getattr(o, "__closure__", None)]
        for prim in prims:
            name = prim.__name__
            for cell in prim.__closure__:
                try:
                    if cell.cell_contents is prim.fn:
                        cell.cell_contents = self.wrap((name, "forward"), prim.fn)
                except ValueError:
                    pass
            if isinstance(prim.vjps, tuple):
                prim.vjps = tuple(None if v is None else self.wrap((name, f"vjp{i}"), v)
                                  for i, v in enumerate(prim.vjps))
        return len(prims)

    def report(self, steps, wall):
        total = sum(self.total.values())
        print(f"per-op time, ms per step (exclusive; ops {total / steps * 1e3:.2f} of wall {wall / steps * 1e3:.2f}):")
        for key, t in sorted(self.total.items(), key=lambda kv: -kv[1])[:20]:
            print(f"  {key[0] + ' ' + key[1]:<34}{t / steps * 1e3:8.3f} ms {100 * t / wall:5.1f}%"
                  f"  ({self.calls[key] // steps} calls/step)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="lenet64")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cprofile", type=int, default=25, help="cProfile rows to print (0: none)")
    args = parser.parse_args()
    step = make_ours(args.workload)
    for _ in range(3):
        step()
    if args.cprofile:
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(args.steps):
            step()
        profile.disable()
        print(f"cProfile, {args.workload}, {args.steps} steps, by own time:")
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.cprofile)
    timer = OpTimer()
    timer.install()
    step()
    timer.total.clear()
    timer.calls.clear()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    timer.report(args.steps, time.perf_counter() - start)


if __name__ == "__main__":
    main()
