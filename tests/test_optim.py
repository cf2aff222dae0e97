import math

import numpy as np
import pytest

from tinygrad_edu import Tensor, init, optim


def _param(values, dtype=np.float64):
    return Tensor(np.array(values, dtype), requires_grad=True)


def _set_grad(p, values):
    p.grad = Tensor(np.array(values, p.dtype))


def test_sgd_plain_step_is_p_minus_lr_grad_in_place():
    p = _param([1.0, -2.0])
    buffer = p.data
    opt = optim.SGD([p], lr=0.1)
    _set_grad(p, [0.5, 1.0])
    opt.step()
    assert p.data is buffer  # updated in place
    np.testing.assert_allclose(p.data, [1.0 - 0.05, -2.0 - 0.1], rtol=0, atol=1e-15)


def test_sgd_momentum_and_weight_decay_closed_form():
    p = _param([1.0])
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01)
    grads = [2.0, -1.0, 0.5]
    value, velocity = 1.0, None
    for g in grads:
        _set_grad(p, [g])
        opt.step()
        d = g + 0.01 * value
        velocity = d if velocity is None else 0.9 * velocity + d
        value -= 0.1 * velocity
        np.testing.assert_allclose(p.data, [value], rtol=1e-14)


def test_adam_closed_form():
    p = _param([0.5, -0.25])
    lr, (b1, b2), eps, wd = 0.01, (0.8, 0.99), 1e-6, 0.1
    opt = optim.Adam({"w": p}, lr=lr, betas=(b1, b2), eps=eps, weight_decay=wd)
    value, m, v = np.array([0.5, -0.25]), np.zeros(2), np.zeros(2)
    for t, g in enumerate([[1.0, -2.0], [0.3, 0.0], [-1.0, 4.0]], start=1):
        _set_grad(p, g)
        opt.step()
        d = np.array(g) + wd * value
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        value = value - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        np.testing.assert_allclose(p.data, value, rtol=1e-12)


def test_adam_first_step_moves_each_weight_by_about_lr():
    p = _param([0.0, 0.0, 0.0])
    _set_grad(p, [1e-3, -5.0, 300.0])
    optim.Adam([p], lr=0.1).step()
    np.testing.assert_allclose(p.data, [-0.1, 0.1, -0.1], rtol=1e-4)


def test_zero_grad_sets_none_and_parameters_without_grad_are_untouched():
    a, b = _param([1.0]), _param([2.0])
    opt = optim.Adam([a, b], lr=0.1)
    _set_grad(a, [1.0])
    opt.step()
    assert b.data[0] == 2.0 and opt.state[1] == {}   # no grad: no update and no state
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    before = a.data.copy()
    opt.step()                                       # nothing has a grad now
    assert np.array_equal(a.data, before)


def test_float32_parameters_stay_float32():
    p = Tensor(np.ones(3, np.float32), requires_grad=True)
    for opt in (optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=1e-4), optim.Adam([p], weight_decay=1e-4)):
        _set_grad(p, [1.0, 2.0, 3.0])
        opt.step()
        opt.step()
        assert p.data.dtype == np.float32


def test_optimizers_refuse_bad_arguments():
    p = _param([1.0])
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="list"):
        optim.SGD(p, lr=0.1)


@pytest.mark.parametrize("kind", ["sgd", "sgd_momentum", "adam", "adam_wd"])
def test_optimizers_match_torch_optim(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    start = rng.standard_normal((3, 4))
    ours = _param(start)
    theirs = torch.tensor(start, requires_grad=True)
    make = {
        "sgd": (lambda ps: optim.SGD(ps, lr=0.1), lambda ps: torch.optim.SGD(ps, lr=0.1)),
        "sgd_momentum": (lambda ps: optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01),
                         lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01)),
        "adam": (lambda ps: optim.Adam(ps, lr=0.01), lambda ps: torch.optim.Adam(ps, lr=0.01)),
        "adam_wd": (lambda ps: optim.Adam(ps, lr=0.02, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1),
                    lambda ps: torch.optim.Adam(ps, lr=0.02, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.1)),
    }[kind]
    our_opt, their_opt = make[0]([ours]), make[1]([theirs])
    for _ in range(6):
        g = rng.standard_normal((3, 4))
        _set_grad(ours, g)
        theirs.grad = torch.tensor(g)
        our_opt.step()
        their_opt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)


# ---- init ------------------------------------------------------------------------------------
def test_fans_of_linear_and_conv_weights():
    assert init.fan_in_and_fan_out((80, 96)) == (96, 80)
    assert init.fan_in_and_fan_out((6, 3, 5, 5)) == (75, 150)
    with pytest.raises(ValueError, match="2 dimensions"):
        init.fan_in_and_fan_out((10,))


def test_initialiser_bounds_follow_pytorchs_formulas():
    w = init.kaiming_uniform((200, 300), rng=0)                       # a=0: gain sqrt(2)
    bound = math.sqrt(2) * math.sqrt(3 / 300)
    assert w.requires_grad and w.dtype == np.float32
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    w = init.kaiming_uniform((64, 16, 5, 5), mode="fan_out", nonlinearity="relu", rng=0)
    assert np.abs(w.data).max() <= math.sqrt(2) * math.sqrt(3 / (64 * 25))
    w = init.xavier_uniform((100, 50), rng=1)
    bound = math.sqrt(6 / 150)
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.99 * bound
    w = init.default_weight((32, 16, 5, 5), rng=2)                    # 1/sqrt(fan_in)
    assert np.abs(w.data).max() <= 1 / math.sqrt(400) and np.abs(w.data).max() > 0.99 / math.sqrt(400)
    b = init.default_bias(32, fan_in=400, rng=3)
    assert b.shape == (32,) and np.abs(b.data).max() <= 1 / math.sqrt(400)


def test_gains_and_zero_element_weights_as_torch_nn_init():
    # torch.nn.init.calculate_gain's table, written out
    for name in ("conv1d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "linear"):
        assert init.calculate_gain(name) == 1.0
    assert init.calculate_gain("selu") == 0.75
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))   # param None: 0.01
    assert init.calculate_gain("leaky_relu", 0) == math.sqrt(2)
    w = init.kaiming_uniform((64, 16, 3), nonlinearity="conv1d", rng=0)
    assert np.abs(w.data).max() <= math.sqrt(3 / 48)
    for empty in ((3, 0), (0, 4, 3, 3)):       # torch warns that this is a no-op; no ZeroDivisionError
        assert init.kaiming_uniform(empty, rng=0).shape == empty and init.xavier_uniform(empty, rng=0).shape == empty


def test_initialisers_fill_a_tensor_in_place_and_are_reproducible():
    t = Tensor(np.zeros((4, 3), np.float64))
    buffer = t.data
    assert init.xavier_uniform(t, rng=5) is t and t.data is buffer and t.dtype == np.float64
    assert np.array_equal(t.data, init.xavier_uniform((4, 3), rng=5, dtype=np.float64).data)


def test_initialiser_variance_matches_torch_init():
    torch = pytest.importorskip("torch")
    shape = (256, 128, 3, 3)
    ours = init.kaiming_uniform(shape, rng=0, nonlinearity="relu").data
    theirs = torch.nn.init.kaiming_uniform_(torch.empty(shape), nonlinearity="relu").numpy()
    assert abs(ours.std() / theirs.std() - 1) < 0.01
