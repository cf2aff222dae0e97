"""Our code against our code: two checkouts of tinygrad_edu timed on the same training steps in
alternating fresh processes; the median ratio new / old and its spread.

    git worktree add /tmp/old <revision>
    python benchmarks/bench_ab.py /tmp/old [--new .] [--only lenet64,wide64] [--rounds 10] [--threads 2]

Why: on a shared machine a workload's time drifts by 15% and more between runs a few minutes
apart, so two bench_table.py runs cannot show a 5% change. Here each round starts one fresh
process per checkout, the two taking turns (which goes first alternates); each process times
every workload for a block of steps and keeps the median step. The ratio is taken within each
round, where both sides met the same machine, and the table shows the median over the rounds.
Both sides run this directory's workloads.py (the same steps); each imports its own checkout's
tinygrad_edu. Workload names are workloads.py's (default: the LeNets, the 32x32 CNN, the wide model).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT = "lenet10,lenet64,lenet256,cnn32_64,wide64"

# One side's process: its checkout first on sys.path, so that `import tinygrad_edu` finds it
CHILD = r"""
import json, os, sys, time
sys.path[:0] = [{tree!r}, {here!r}]
import numpy as np
import tinygrad_edu
from workloads import make_ours
if not os.path.abspath(tinygrad_edu.__file__).startswith({tree!r} + os.sep):
    raise SystemExit(f"imported {{tinygrad_edu.__file__}}, not the checkout in {tree!r}")
times = {{}}
for name in {names!r}:
    step = make_ours(name)
    for _ in range(3):
        step()
    steps, start = [], time.perf_counter()
    while len(steps) < 5 or time.perf_counter() - start < {seconds!r}:
        t = time.perf_counter()
        step()
        steps.append(time.perf_counter() - t)
    times[name] = float(np.median(steps))
print(json.dumps(times))
"""


def run_side(tree, names, seconds, threads):
    env = dict(os.environ, **{var: str(threads) for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                                           "MKL_NUM_THREADS")})
    env.pop("PYTHONPATH", None)
    code = CHILD.format(tree=tree, here=HERE, names=names, seconds=seconds)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree)
    if out.returncode:
        raise SystemExit(f"the run in {tree} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="the checkout to compare against (a directory holding tinygrad_edu/)")
    parser.add_argument("--new", default=os.path.join(HERE, ".."), help="the checkout measured (default: this one)")
    parser.add_argument("--only", default=DEFAULT, help="comma-separated workload names")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.6, help="timed block per workload and process")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    trees = {"old": os.path.abspath(args.old), "new": os.path.abspath(args.new)}
    names = args.only.split(",")
    times = {side: {name: [] for name in names} for side in trees}
    for r in range(args.rounds):
        for side in (("old", "new") if r % 2 == 0 else ("new", "old")):
            for name, t in run_side(trees[side], names, args.seconds, args.threads).items():
                times[side][name].append(t)
    print(f"old: {trees['old']}\nnew: {trees['new']}\n{args.threads} threads, {args.rounds} rounds\n")
    print("| workload | old ms | new ms | new / old (median of rounds) | spread |\n|---|---|---|---|---|")
    for name in names:
        old, new = np.array(times["old"][name]), np.array(times["new"][name])
        ratio = new / old
        print(f"| {name} | {np.median(old) * 1e3:.2f} | {np.median(new) * 1e3:.2f} | {np.median(ratio):.3f} "
              f"| {ratio.min():.2f}-{ratio.max():.2f} |")


if __name__ == "__main__":
    main()
