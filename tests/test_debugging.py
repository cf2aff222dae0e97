"""detect_anomaly's blame (the learner's line, the first bad op) and Tensor.register_hook, which
follows PyTorch's semantics (compared with torch when it is installed, closed forms always)."""
import inspect
import os

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor

try:
    import torch
except ImportError:
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is an optional oracle")


# ---- detect_anomaly -------------------------------------------------------------------------
def log_of_shifted(x):
    """A learner's helper with a bug: log of values that can be 0 or negative."""
    return (x - 2.0).log()  # the bad line


BAD_LINE = log_of_shifted.__code__.co_firstlineno + 2


def test_anomaly_names_the_learners_file_line_and_text():
    x = Tensor(np.array([3.0, 2.0, 1.0], np.float32), requires_grad=True)
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        with pytest.raises(FloatingPointError) as error:
            log_of_shifted(x * 1.0).sum()
    message = str(error.value)
    assert os.path.basename(__file__) in message
    assert f"line {BAD_LINE}" in message
    assert "return (x - 2.0).log()  # the bad line" in message
    assert message.startswith("detect_anomaly: log (input shapes (3,)) produced NaN and inf in its forward result "
                              "(2 of 3 values)")
    assert "its inputs were all finite, so log is the first op" in message


def test_anomaly_blames_the_data_when_an_input_is_already_bad():
    data = Tensor(np.array([1.0, np.nan], np.float32))
    w = Tensor(np.ones(2, np.float32), requires_grad=True)
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match=r"mul .*\n.*\n.*\n.*given NaN in input 0 \(1 of 2"):
            data * w


def test_anomaly_in_backward_names_the_forward_line_and_the_vjp():
    x = Tensor(np.array([0.0, 4.0], np.float32), requires_grad=True)
    with tg.detect_anomaly(), np.errstate(all="ignore"):
        y = x.sqrt().sum()          # sqrt(0) is fine; its slope at 0 is not
        line = inspect.currentframe().f_lineno - 1
        with pytest.raises(FloatingPointError) as error:
            y.backward()
    message = str(error.value)
    assert "sqrt (input shapes (2,)) produced inf in its gradient for input 0 (1 of 2 values)" in message
    assert f"line {line}" in message and "y = x.sqrt().sum()" in message
    assert "so sqrt's VJP for input 0 made the first non-finite gradient" in message


def test_anomaly_in_backward_blames_the_incoming_gradient_when_it_was_bad():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    y = x * 3.0
    with tg.detect_anomaly():
        with pytest.raises(FloatingPointError, match="arriving at its result was already non-finite"):
            y.backward(np.array([np.inf, 1.0], np.float32))


def test_anomaly_mode_is_off_outside_and_records_nothing():
    x = Tensor(np.array([1.0], np.float32), requires_grad=True)
    y = x * 2.0
    assert getattr(y, "_origin", None) is None
    with tg.detect_anomaly():
        z = x * 2.0
    assert z._origin[0] == __file__ and z._origin[2] == "test_anomaly_mode_is_off_outside_and_records_nothing"


# ---- register_hook: closed forms (no torch needed) ------------------------------------------
def test_hooks_run_in_order_each_seeing_the_previous_result():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    seen = []
    x.register_hook(lambda g: seen.append(("first", g.data.copy())) or g * 2.0)
    x.register_hook(lambda g: seen.append(("second", g.data.copy())) or g + 1.0)
    (x * x).sum().backward()                                    # d/dx = 2x = [2, 4]
    assert [name for name, _ in seen] == ["first", "second"]
    np.testing.assert_allclose(seen[0][1], [2.0, 4.0])
    np.testing.assert_allclose(seen[1][1], [4.0, 8.0])
    np.testing.assert_allclose(x.grad.data, [5.0, 9.0])         # 2 * 2x + 1


def test_hook_on_a_non_leaf_changes_what_flows_on_and_its_retained_grad():
    x = Tensor(np.array([1.0, -2.0], np.float32), requires_grad=True)
    y = x * 3.0
    y.retain_grad()
    calls = []
    y.register_hook(lambda g: calls.append(1) or g * 10.0)
    (y * y + y).sum().backward()                                # d/dy = 2y + 1, y used twice: one call
    assert calls == [1]
    np.testing.assert_allclose(y.grad.data, 10 * (2 * np.array([3.0, -6.0]) + 1))
    np.testing.assert_allclose(x.grad.data, 3 * 10 * (2 * np.array([3.0, -6.0]) + 1))


def test_removed_hook_is_not_called_and_none_keeps_the_gradient():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    seen = []
    handle = x.register_hook(lambda g: g * 0.0)
    x.register_hook(lambda g: seen.append(g.data.copy()))      # returns None: gradient unchanged
    handle.remove()
    handle.remove()                                             # twice is harmless, as in PyTorch
    (x * 3.0).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 3.0])
    np.testing.assert_allclose(seen[0], [3.0, 3.0])


def test_hooks_also_run_under_grad_and_check_what_they_return():
    x = Tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    x.register_hook(lambda g: g * -1.0)
    (gx,) = tg.grad((x * x).sum(), x)
    np.testing.assert_allclose(gx.data, [-2.0, -4.0])
    bad = Tensor(np.ones(2, np.float32), requires_grad=True)
    bad.register_hook(lambda g: np.zeros(2))
    with pytest.raises(TypeError, match="register_hook: a hook returned ndarray"):
        bad.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        Tensor(np.ones(2, np.float32)).register_hook(lambda g: g)


# ---- register_hook against PyTorch ----------------------------------------------------------
def run_hooks_example(lib, tensor):
    """The same program in both frameworks: two hooks on a leaf (one removed after the first
    backward), one on a non-leaf used twice; returns everything the hooks saw and the grads."""
    seen = []
    x = tensor([0.5, -1.5, 2.0])
    y = x * 3.0
    y.retain_grad()
    y.register_hook(lambda g: seen.append(("y", np.array(g.detach().numpy() if lib == "torch" else g.data)))
                    or g * 2.0)
    first = x.register_hook(lambda g: seen.append(("x1", np.array(g.detach().numpy() if lib == "torch" else g.data)))
                            or g + 1.0)
    x.register_hook(lambda g: seen.append(("x2", np.array(g.detach().numpy() if lib == "torch" else g.data))))
    (y * y + y.tanh()).sum().backward()
    grads = [np.array(x.grad.detach().numpy() if lib == "torch" else x.grad.data),
             np.array(y.grad.detach().numpy() if lib == "torch" else y.grad.data)]
    first.remove()
    (x * x).sum().backward()
    grads.append(np.array(x.grad.detach().numpy() if lib == "torch" else x.grad.data))
    return seen, grads


@needs_torch
def test_hooks_match_pytorch():
    ours = run_hooks_example("tg", lambda v: Tensor(np.array(v, np.float64), requires_grad=True))
    theirs = run_hooks_example("torch", lambda v: torch.tensor(v, dtype=torch.float64, requires_grad=True))
    assert [n for n, _ in ours[0]] == [n for n, _ in theirs[0]] == ["y", "x1", "x2", "x2"]
    for (_, a), (_, b) in zip(ours[0], theirs[0]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for a, b in zip(ours[1], theirs[1]):
        np.testing.assert_allclose(a, b, rtol=1e-12)
