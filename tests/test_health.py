"""tinygrad_edu.health.Monitor: its numbers against hand-computed norms, and its warnings on
constructed cases (a too-high learning rate, a dead layer, NaN)."""
import math
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, optim
from tinygrad_edu.health import Monitor


def test_two_steps_of_sgd_match_hand_computed_norms():
    w = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    b = Tensor(np.array([1.0, -1.0]), requires_grad=True)
    params = {"fc.weight": w, "fc.bias": b}
    sgd = optim.SGD(params, lr=0.1)
    monitor = Monitor(params)
    for _ in range(2):
        loss = (w * w).sum() * 0.5 + b.sum()            # grad w = w, grad b = [1, 1]
        sgd.zero_grad()
        loss.backward()
        sgd.step()                                       # w <- 0.9 w, b <- b - 0.1
        monitor.step(loss)
    r30, r2 = math.sqrt(30), math.sqrt(2)
    np.testing.assert_allclose(monitor.grad_norm["fc.weight"], [r30, 0.9 * r30])
    np.testing.assert_allclose(monitor.weight_norm["fc.weight"], [0.9 * r30, 0.81 * r30])
    np.testing.assert_allclose(monitor.update_ratio["fc.weight"], [1 / 9, 1 / 9])   # 0.1 w / 0.9 w
    np.testing.assert_allclose(monitor.grad_norm["fc.bias"], [r2, r2])
    np.testing.assert_allclose(monitor.weight_norm["fc.bias"], [math.sqrt(0.81 + 1.21), math.sqrt(0.64 + 1.44)])
    np.testing.assert_allclose(monitor.update_ratio["fc.bias"],
                               [0.1 * r2 / math.sqrt(2.02), 0.1 * r2 / math.sqrt(2.08)])
    np.testing.assert_allclose(monitor.losses, [15 + 0.0, 0.5 * 0.81 * 30 - 0.2])
    assert monitor.latest()["fc.weight"]["update_ratio"] == pytest.approx(1 / 9)


def relu_layer_step(monitor, w, x, scope="fc1"):
    with tg.scope(scope):
        loss = tg.functional.relu(x @ w.T).sum()
    loss.backward()
    monitor.step(loss)
    w.grad = None


def test_dead_relu_share_counts_units_silent_for_every_input_of_the_window():
    x = Tensor(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    # units (rows): 0 fires on input 0, 1 on input 1, 2-4 never (negative weights, positive inputs)
    w = Tensor(np.array([[1.0, -5.0], [-5.0, 1.0], [-1.0, -1.0], [-2.0, -0.5], [-0.1, -0.1]]), requires_grad=True)
    monitor = Monitor({"fc1.weight": w}, window=3)
    relu_layer_step(monitor, w, x)
    assert monitor.dead["fc1"] == [0.6]
    assert "fc1: 60% of ReLU units never fire" in "\n".join(monitor.warnings())
    w.data[2] = [1.0, 1.0]                               # unit 2 fires again: 2 of 5 silent
    relu_layer_step(monitor, w, x)
    assert monitor.dead["fc1"][-1] == pytest.approx(0.4)
    assert not any("never fire" in text for text in monitor.warnings())


def test_a_conv_channel_is_dead_only_if_silent_at_every_position():
    images = Tensor(np.abs(np.random.default_rng(0).standard_normal((4, 1, 6, 6))))
    weight = Tensor(np.stack([np.ones((1, 3, 3)), -np.ones((1, 3, 3)), -np.ones((1, 3, 3))]), requires_grad=True)
    monitor = Monitor({"conv1.weight": weight})
    with tg.scope("conv1"):
        loss = tg.functional.relu(tg.functional.conv2d(images, weight)).sum()
    loss.backward()
    monitor.step(loss)
    assert monitor.dead == {"conv1": [pytest.approx(2 / 3)]}


def test_a_too_high_learning_rate_is_named():
    w = Tensor(np.array([[0.3, -0.2], [0.1, 0.4]], np.float32), requires_grad=True)
    params = {"conv1.weight": w}
    sgd = optim.SGD(params, lr=1.5)                      # w - 1 -> -2 (w - 1) each step
    monitor = Monitor(params)
    for _ in range(6):
        loss = ((w - 1.0) ** 2).sum()
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        monitor.step(loss)
    warnings = monitor.warnings()
    assert any(text.startswith("conv1.weight: updates are ") and "(usual: about 1e-3); the learning rate may be "
               "too high" in text for text in warnings), warnings
    assert monitor.diverged() is not None and "grew to" in monitor.diverged()
    name, why = monitor.first_bad_layer()
    assert name == "conv1.weight" and "at step 1 its updates were" in why


def test_a_healthy_small_step_gives_no_warning_and_no_divergence():
    w = Tensor(np.array([[0.3, -0.2], [0.1, 0.4]]), requires_grad=True)
    sgd = optim.SGD([w], lr=1e-3)
    w.name = "w"
    monitor = Monitor([w])
    for _ in range(5):
        loss = ((w - 1.0) ** 2).sum()
        sgd.zero_grad()
        loss.backward()
        sgd.step()
        monitor.step(loss)
    assert monitor.names == ["w"] and monitor.warnings() == [] and monitor.diverged() is None


def test_nan_loss_names_the_step_and_the_first_non_finite_gradient():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    b = Tensor(np.ones(2), requires_grad=True)
    monitor = Monitor({"conv2.weight": w, "fc1.bias": b})
    w.grad, b.grad = Tensor(np.ones((2, 2))), Tensor(np.ones(2))
    monitor.step(1.0)
    w.grad = Tensor(np.array([[1.0, np.inf], [1.0, 1.0]]))      # step 2: a gradient overflows
    monitor.step(1.5)
    b.grad = Tensor(np.full(2, np.nan))
    monitor.step(float("nan"))                                  # step 3: the loss follows
    assert "loss became NaN at step 3; the first non-finite gradient was conv2.weight's, at step 2" in monitor.warnings()
    assert monitor.diverged() == "the loss became NaN at step 3"
    assert monitor.first_bad_layer() == ("conv2.weight", "its gradient became non-finite at step 2")

    fresh = Monitor({"conv2.weight": w})
    w.grad = Tensor(np.full((2, 2), np.nan))
    fresh.step(float("nan"))
    assert fresh.warnings()[0] == "loss became NaN at step 1; the first non-finite gradient was conv2.weight's"


def test_plot_writes_one_png(tmp_path):
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    monitor = Monitor({"fc.weight": w})
    for value in (2.0, 1.0, float("nan")):
        w.grad = Tensor(np.ones((2, 2)))
        w.data -= 0.01
        monitor.step(value)
    monitor.plot(tmp_path / "health.png")
    assert (tmp_path / "health.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob(".*.tmp"))


def test_the_plot_marks_the_usual_update_ratio_that_health_warns_by():
    from tinygrad_edu.training import health
    from tinygrad_edu.training.plots import health_figure
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    monitor = Monitor({"fc.weight": w})
    w.grad = Tensor(np.ones((2, 2)))
    monitor.step(1.0)
    ratio_ax = health_figure(monitor).axes[2]
    assert ratio_ax.get_title().startswith("update / weight")
    usual = [line for line in ratio_ax.get_lines() if line.get_label().startswith("usual")]
    assert len(usual) == 1 and usual[0].get_label() == "usual (0.001)"
    assert list(usual[0].get_ydata()) == [health.USUAL_UPDATE_RATIO] * 2 == [1e-3] * 2
    monitor.usual_update_ratio = 2e-3                           # read off the monitor, not written again
    (line,) = [line for line in health_figure(monitor).axes[2].get_lines() if line.get_label().startswith("usual")]
    assert line.get_label() == "usual (0.002)" and list(line.get_ydata()) == [2e-3] * 2


def test_health_is_a_flat_module_and_importing_it_loads_no_matplotlib():
    code = ("import sys, tinygrad_edu as tg, tinygrad_edu.health as h; "
            "assert h is tg.health and h.Monitor.__module__ == 'tinygrad_edu.training.health'; "
            "assert 'matplotlib' not in sys.modules; print('ok')")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout == "ok\n"
