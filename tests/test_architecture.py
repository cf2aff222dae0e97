"""The package's shape, checked: imports run one way, kernels know nothing of autograd, only the
cli knows argparse, and grad mode belongs to each thread."""
import ast
import threading
from pathlib import Path

import numpy as np

import tinygrad_edu as tg
from tinygrad_edu import functional as F
from tinygrad_edu.nn import models

PACKAGE = Path(tg.__file__).parent


def _module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path):
    """The package modules a file imports, at any depth in the file (lazy imports count too)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            # `from . import functional` names a module; `from .engine import Tensor` a name in one
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def test_no_import_cycles_between_modules():
    graph = {m: {i for i in deps if i != "tinygrad_edu"} for m, deps in GRAPH.items() if m != "tinygrad_edu"}
    state = {}

    def visit(m, path):
        state[m] = "open"
        for d in graph.get(m, ()):
            if state.get(d) == "open":
                raise AssertionError("import cycle: " + " -> ".join(path + [m, d]))
            if d not in state:
                visit(d, path + [m])
        state[m] = "done"

    for m in graph:
        if m not in state:
            visit(m, [])


def test_kernels_import_nothing_from_the_engine_or_the_ops():
    for m, deps in GRAPH.items():
        if m.startswith("tinygrad_edu.kernels"):
            assert all(d.startswith("tinygrad_edu.kernels") for d in deps), (m, deps)


def test_the_engine_imports_no_op():
    """Only its anomaly-mode messages, which import nothing from the package themselves."""
    assert GRAPH["tinygrad_edu.engine"] == {"tinygrad_edu.anomaly"}
    assert GRAPH["tinygrad_edu.anomaly"] == set()


def test_only_the_cli_imports_argparse():
    users = sorted(m for m, p in MODULES.items() if "argparse" in _imports(p))
    assert users == ["tinygrad_edu.cli"]


def test_every_registered_primitive_carries_its_rules():
    """The text the backward graph shows comes from each VJP's registration (defvjp(rules=...))."""
    from tinygrad_edu import engine, ops
    prims = [getattr(mod, name) for mod in (engine, ops.elementwise, ops.reduce, ops.shape, ops.linalg,
                                             ops.conv, ops.pool, ops.loss) for name in dir(mod)]
    prims = {id(p): p for p in prims if callable(p) and hasattr(p, "vjps") and hasattr(p, "rules")}
    assert len(prims) >= 30
    missing = sorted(p.__name__ for p in prims.values() if p.vjps and p.rules is None)
    assert not missing, f"primitives without rules: {missing}"


def _train_steps(model, seed, steps=2):
    """A few SGD steps of a bundled model on fixed random digits; returns every gradient seen."""
    rng = np.random.default_rng(seed)
    params = models.init_params(model, rng=seed, dtype=np.float64)
    x = rng.random((4, 1, 28, 28))
    y = rng.integers(0, 10, 4)
    grads = []
    for _ in range(steps):
        loss = models.loss_fn(params, tg.Tensor(x), y)
        loss.backward()
        grads.append({k: p.grad.data.copy() for k, p in params.items()})
        with tg.no_grad():                     # another thread's no_grad must not reach this one
            for p in params.values():
                p.data -= 0.1 * p.grad.data
                p.grad = None
    return grads


def test_two_threads_train_two_models_as_if_one_after_the_other():
    expected = {name: _train_steps(name, seed) for name, seed in (("seed", 1), ("wide", 2))}
    results, errors = {}, []

    def run(name, seed):
        try:
            for _ in range(2):                  # two rounds: the threads interleave differently
                results[name] = _train_steps(name, seed)
                assert all(np.array_equal(a[k], b[k]) for a, b in zip(results[name], expected[name]) for k in a)
        except Exception as error:              # noqa: BLE001 (reported to the main thread below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=args) for args in (("seed", 1), ("wide", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert tg.is_grad_enabled()


def test_no_grad_in_one_thread_leaves_other_threads_recording():
    inside, release = threading.Event(), threading.Event()

    def hold_no_grad():
        with tg.no_grad():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=hold_no_grad)
    t.start()
    inside.wait(5)
    try:
        x = tg.Tensor(np.ones(3), requires_grad=True)
        assert (x * 2).requires_grad                 # this thread still records
    finally:
        release.set()
        t.join()
    assert tg.is_grad_enabled()


def test_a_decorated_function_used_by_many_threads_restores_each_threads_mode():
    @tg.no_grad
    def work(barrier):
        barrier.wait(5)
        return tg.is_grad_enabled()

    barrier = threading.Barrier(4)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append((work(barrier), tg.is_grad_enabled())))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == [(False, True)] * 4
    assert tg.is_grad_enabled()


def test_residuals_are_kept_only_while_recording_and_freed_by_backward():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((1, 1, 4, 4)), requires_grad=True)
    y = F.max_pool2d(x, 2)
    assert y.saved is not None                      # the routing of each window, for the VJP
    y.sum().backward()
    assert y.saved is None
    first = x.grad.data.copy()
    y.sum().backward()                              # found again: the same gradient once more
    np.testing.assert_array_equal(x.grad.data, 2 * first)
