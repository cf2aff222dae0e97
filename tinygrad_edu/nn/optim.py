"""Optimizers: SGD (with momentum and weight decay) and Adam, with torch.optim's update rules.

An optimizer holds a list of parameter Tensors. After `loss.backward()` has filled their `.grad`,
`step()` updates each parameter's `.data` *in place* (the same ndarray object, so anything else
holding it sees the new values), and `zero_grad()` sets every `.grad` back to None before the
next backward. A parameter whose `.grad` is None is skipped by `step()`: no update, and its
optimizer state (momentum, Adam's moments and step count) does not advance.
"""
import math

import numpy as np

from ..engine import Tensor


class Optimizer:
    """The shared part: collecting the parameters, zero_grad, and per-parameter state."""

    def __init__(self, params, lr):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params should be a list or dict of Tensors, "
                            f"not a single Tensor (wrap it in a list)")
        self.params = list(params.values() if isinstance(params, dict) else params)
        if not self.params:
            raise ValueError(f"{type(self).__name__}: got an empty list of parameters")
        for p in self.params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: every parameter must be a Tensor, got {type(p).__name__}")
        _check_non_negative(self, "lr", lr)
        self.lr = lr
        self.state = [{} for _ in self.params]  # per parameter, in the same order

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        for p, state in zip(self.params, self.state):
            if p.grad is not None:
                grad = p.grad.data if isinstance(p.grad, Tensor) else np.asarray(p.grad)
                self._update(p.data, grad.astype(p.dtype, copy=False), state)

    def _update(self, param, grad, state):
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, torch.optim.SGD's rule (dampening 0, no Nesterov):

        g = grad + weight_decay * p
        v = g                  on the first step,   v = momentum * v + g   afterwards
        p = p - lr * v         (v is g itself when momentum is 0)
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr)
        _check_non_negative(self, "momentum", momentum)
        _check_non_negative(self, "weight_decay", weight_decay)
        self.momentum, self.weight_decay = momentum, weight_decay

    def _update(self, param, grad, state):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            if "velocity" not in state:
                state["velocity"] = grad.copy()
            else:
                state["velocity"] *= self.momentum
                state["velocity"] += grad
            grad = state["velocity"]
        param -= self.lr * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), torch.optim.Adam's rule (L2 weight decay, no AMSGrad):

        g = grad + weight_decay * p
        m = beta1 * m + (1 - beta1) * g            (m, v start at 0; t counts this parameter's steps)
        v = beta2 * v + (1 - beta2) * g * g
        p = p - lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)

    The bias corrections undo m and v starting at zero; eps is added after the correction, as
    PyTorch does, which matters for the exact numbers.
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        beta1, beta2 = betas
        for name, beta in (("betas[0]", beta1), ("betas[1]", beta2)):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Adam: {name} must be in [0, 1), got {beta}")
        _check_non_negative(self, "eps", eps)
        _check_non_negative(self, "weight_decay", weight_decay)
        self.betas, self.eps, self.weight_decay = (beta1, beta2), eps, weight_decay

    def _update(self, param, grad, state):
        beta1, beta2 = self.betas
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if not state:
            state["step"] = 0
            state["m"] = np.zeros_like(param)
            state["v"] = np.zeros_like(param)
        state["step"] += 1
        m, v, t = state["m"], state["v"], state["step"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        step_size = self.lr / (1 - beta1 ** t)   # Python floats, so a float32 parameter stays float32
        denominator = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + self.eps
        param -= step_size * m / denominator


def _check_non_negative(optimizer, name, value):
    if not value >= 0.0:  # also refuses NaN
        raise ValueError(f"{type(optimizer).__name__}: {name} must be >= 0, got {value}")
