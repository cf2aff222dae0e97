"""Every engine op, forward and gradient, against PyTorch (skipped cleanly without torch)."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor

torch = pytest.importorskip("torch")
rng = np.random.default_rng(0)


def pair(*shapes, positive=False):
    arrays = [rng.standard_normal(s) for s in shapes]
    if positive:
        arrays = [0.5 + np.abs(a) for a in arrays]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    return ours, theirs


def compare(ours_fn, torch_fn, *shapes, positive=False, atol=1e-10):
    ours, theirs = pair(*shapes, positive=positive)
    out, ref = ours_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), atol=atol, rtol=1e-10)
    weights = rng.standard_normal(ref.shape)
    (out * Tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        np.testing.assert_allclose(a.grad.data, expected, atol=atol, rtol=1e-10)


CASES = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, [(4, 3), (3,)]),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, [(4, 1), (1, 3)]),
    "rsub": (lambda a: 2 - a, lambda a: 2 - a, [(3,)]),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, [(2, 4, 3), (4, 1)]),
    "div": (lambda a, b: a / b, lambda a, b: a / b, [(4, 3), (4, 3)]),
    "pow": (lambda a, b: (a * a + 0.5) ** b, lambda a, b: (a * a + 0.5) ** b, [(4, 3), (3,)]),
    "pow_scalar": (lambda a: a ** 3, lambda a: a ** 3, [(5,)]),
    "rpow": (lambda a: 3.0 ** a, lambda a: 3.0 ** a, [(5,)]),
    "neg": (lambda a: -a, lambda a: -a, [(5,)]),
    "matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(2, 4, 3), (3, 5)]),
    "matmul_vec": (lambda a, b: a @ b, lambda a, b: a @ b, [(4, 3), (3,)]),
    "vec_matmul": (lambda a, b: a @ b, lambda a, b: a @ b, [(3,), (2, 3, 4)]),
    "sum": (lambda a: a.sum(axis=(0, 2)), lambda a: a.sum(dim=(0, 2)), [(2, 3, 4)]),
    "sum_keepdims": (lambda a: a.sum(axis=-1, keepdims=True), lambda a: a.sum(dim=-1, keepdim=True), [(2, 3)]),
    "mean": (lambda a: a.mean(axis=1), lambda a: a.mean(dim=1), [(2, 3, 4)]),
    "mean_all": (lambda a: a.mean(), lambda a: a.mean(), [(2, 3)]),
    "max": (lambda a: a.max(axis=0), lambda a: a.amax(dim=0), [(4, 3)]),
    "reshape": (lambda a: a.reshape(3, -1), lambda a: a.reshape(3, -1), [(2, 3, 2)]),
    "transpose": (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1), [(2, 3, 4)]),
    "T": (lambda a: a.T, lambda a: a.permute(1, 0), [(2, 3)]),
    "exp": (lambda a: a.exp(), torch.exp, [(5,)]),
    "tanh": (lambda a: a.tanh(), torch.tanh, [(5,)]),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, [(5,)]),
    "relu": (lambda a: a.relu(), torch.relu, [(7,)]),
    "abs": (lambda a: a.abs(), torch.abs, [(7,)]),
    "maximum": (lambda a, b: tg.maximum(a, b), torch.maximum, [(4, 3), (3,)]),
    "getitem": (lambda a: a[1:, ::-1], lambda a: a[1:].flip(1), [(3, 4)]),
    "getitem_repeat": (lambda a: a[np.array([0, 0, 2])], lambda a: a[torch.tensor([0, 0, 2])], [(3, 4)]),
    "getitem_mask": (lambda a: a[np.array([True, False, True])], lambda a: a[torch.tensor([True, False, True])], [(3, 2)]),
    "getitem_none": (lambda a: a[None, ..., 1], lambda a: a[None, ..., 1], [(3, 2)]),
    "concatenate": (lambda a, b: tg.concatenate([a, b], axis=1), lambda a, b: torch.cat([a, b], dim=1), [(2, 3), (2, 1)]),
    "stack": (lambda a, b: tg.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], dim=-1), [(2, 3), (2, 3)]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_against_torch(name):
    ours_fn, torch_fn, shapes = CASES[name]
    compare(ours_fn, torch_fn, *shapes)


@pytest.mark.parametrize("op", ["log", "sqrt"])
def test_positive_domain_against_torch(op):
    compare(lambda a: getattr(a, op)(), getattr(torch, op), (6,), positive=True)


def test_where_against_torch():
    cond = rng.random((4, 3)) > 0.5
    compare(lambda a, b: tg.where(cond, a, b), lambda a, b: torch.where(torch.tensor(cond), a, b), (4, 3), (3,))


def test_max_ties_against_torch_amax():
    data = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    x, t = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    x.max(axis=1).sum().backward()
    t.amax(dim=1).sum().backward()
    np.testing.assert_allclose(x.grad.data, t.grad.numpy())


def test_second_derivative_against_torch():
    data = rng.standard_normal(5)
    x, t = Tensor(data, requires_grad=True), torch.tensor(data, requires_grad=True)
    (g,) = tg.grad((x.tanh() * x.exp()).sum(), x, create_graph=True)
    (tgr,) = torch.autograd.grad((t.tanh() * t.exp()).sum(), t, create_graph=True)
    (h,) = tg.grad((g * g).sum(), x)
    (th,) = torch.autograd.grad((tgr * tgr).sum(), t)
    np.testing.assert_allclose(h.data, th.numpy(), rtol=1e-10)
