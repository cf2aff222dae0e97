"""A health report of every layer while a network trains: the folklore of debugging training,
measured.

    monitor = tinygrad_edu.health.Monitor(params)        # {name: Tensor}, in layer order
    for x, y in batches:
        loss = loss_fn(params, x, y)
        optimizer.zero_grad(); loss.backward(); optimizer.step()
        monitor.step(loss)                               # one call per step, after the update
    monitor.report()                                     # warnings in plain words
    monitor.plot("health.png")                           # a line per layer, log scale

Each step records, per parameter, three numbers:
- the gradient norm ||grad||: exploding (growing without bound) or vanishing (near 0) gradients;
- the weight norm ||w||;
- the update-to-weight ratio ||w_after - w_before|| / ||w_after||: how much one step changes
  the weights. About 1e-3 is the usual rule of thumb: 1e-1 means each step rewrites a tenth of
  the weights (the learning rate is too high), 1e-6 that they barely move (too low).
and, for each ReLU in the graph of `loss` (named by its tinygrad_edu.scope), the share of its
units that are dead: never positive, for any input of the batch, in any of the last `window`
steps. A unit is a feature: a neuron of a linear layer, a channel of a conv layer (all positions).
A dead unit passes no gradient back, so nothing can revive it.

Only the parameters' arrays and the graph `loss` already has are read: the monitor adds no work
to the forward or backward pass.
"""
import math
import sys

import numpy as np

from ..engine import Tensor, topological_order

USUAL_UPDATE_RATIO = 1e-3
TOO_HIGH_RATIO = 5e-2       # fifty times the usual (1e-2 is common early in small nets): too high
TOO_LOW_RATIO = 1e-5        # a hundredth of the usual (as a median over the run): too low
DEAD_SHARE = 0.5            # warn when at least half of a layer's ReLU units are dead
EXPLODING = 100.0           # a gradient norm this many times its first steps' is exploding


class Monitor:
    """Per-step gradient norms, weight norms, update-to-weight ratios and dead ReLU shares.

    params: {name: Tensor} (a model's parameters, in layer order) or a list of Tensors (named by
    their `.name`). window: how many recent steps the warnings look at."""

    usual_update_ratio = USUAL_UPDATE_RATIO     # the ratio the warnings call usual; the plot draws it

    def __init__(self, params, window=20):
        if isinstance(params, Tensor):
            raise TypeError("Monitor: params should be a dict or list of Tensors, not a single Tensor")
        if isinstance(params, dict):
            self.names, self.params = list(params), list(params.values())
        else:
            self.params = list(params)
            self.names = [p.name or f"param{i}" for i, p in enumerate(self.params)]
        if not self.params or not all(isinstance(p, Tensor) for p in self.params):
            raise TypeError("Monitor: params should be a non-empty dict or list of Tensors")
        self.window = window
        self.steps = 0
        self.losses = []
        self.grad_norm = {n: [] for n in self.names}
        self.weight_norm = {n: [] for n in self.names}
        self.update_ratio = {n: [] for n in self.names}
        self.dead = {}             # ReLU label -> dead share per step (from the step it was first seen)
        self._silent = {}          # ReLU label -> (steps in a row each unit was silent, steps seen)
        self._before = [p.data.copy() for p in self.params]
        self.bad_loss = None       # (step, value) of the first non-finite loss
        self.bad_gradient = None   # (step, name) of the first non-finite gradient
        self.bad_weight = None     # (step, name) of the first non-finite weight

    # ---- recording ---------------------------------------------------------------------------
    def step(self, loss=None):
        """Record one training step: call it once per step, after optimizer.step() (updates are
        measured between consecutive calls). With `loss` (the Tensor backward ran from), also
        records the loss and the ReLUs in its graph."""
        self.steps += 1
        value = math.nan if loss is None else float(loss.item() if isinstance(loss, Tensor) else loss)
        self.losses.append(value)
        if self.bad_loss is None and loss is not None and not math.isfinite(value):
            self.bad_loss = (self.steps, value)
        bad_gradients = []
        for name, p, before in zip(self.names, self.params, self._before):
            w = p.data
            grad = None if p.grad is None else np.asarray(p.grad.data if isinstance(p.grad, Tensor) else p.grad)
            grad_norm, weight_norm = math.nan if grad is None else _norm(grad), _norm(w)
            self.grad_norm[name].append(grad_norm)
            self.weight_norm[name].append(weight_norm)
            self.update_ratio[name].append(_norm(w - before) / weight_norm if weight_norm > 0 else math.nan)
            np.copyto(before, w)
            # a norm (summed in float64, which no float32 square overflows) is finite iff every element is
            if grad is not None and not math.isfinite(grad_norm):
                bad_gradients.append(name)
            if self.bad_weight is None and not math.isfinite(weight_norm):
                self.bad_weight = (self.steps, name)
        if bad_gradients and self.bad_gradient is None:
            # backward reaches the last layer first, and a NaN spreads from there to the ones before
            self.bad_gradient = (self.steps, bad_gradients[-1])
        if isinstance(loss, Tensor):
            self._record_relus(loss)

    def _record_relus(self, loss):
        labels = {}
        for t in topological_order([loss], grad_only=False):
            if t.op is None or t.op.__name__ != "relu":
                continue
            label = t.scope or "relu"
            labels[label] = labels.get(label, 0) + 1
            if labels[label] > 1:
                label = f"{label}#{labels[label]}"
            out = t.data
            # a unit fired if it was positive anywhere: any image, any position (axis 1 = features)
            fired = (out > 0).any(axis=tuple(a for a in range(out.ndim) if a != 1)) if out.ndim > 1 else out > 0
            silent, seen = self._silent.get(label, (None, 0))
            if silent is None or silent.shape != fired.shape:
                silent, seen = np.zeros(fired.shape, np.int64), 0
            silent, seen = np.where(fired, 0, silent + 1), seen + 1
            self._silent[label] = silent, seen
            history = self.dead.setdefault(label, [])
            history.extend([math.nan] * (self.steps - 1 - len(history)))   # steps it was not seen
            history.append(float(np.mean(silent >= min(self.window, seen))))

    # ---- reading -----------------------------------------------------------------------------
    def latest(self):
        """{name: {"grad_norm", "weight_norm", "update_ratio"}} of the last step."""
        return {n: {"grad_norm": self.grad_norm[n][-1], "weight_norm": self.weight_norm[n][-1],
                    "update_ratio": self.update_ratio[n][-1]} for n in self.names} if self.steps else {}

    def diverged(self, factor=10.0, first_steps=5):
        """None while training looks sane; else why not: the loss is not finite, or it has grown
        past `factor` times the mean of its first `first_steps` steps."""
        if self.bad_loss is not None:
            return f"the loss became {_word(self.bad_loss[1])} at step {self.bad_loss[0]}"
        if self.steps < 2:
            return None
        start = [v for v in self.losses[:min(first_steps, self.steps - 1)] if math.isfinite(v)]
        if start and np.mean(start) > 0 and self.losses[-1] > factor * np.mean(start):
            return (f"the loss grew to {self.losses[-1]:.3g} at step {self.steps}, more than {factor:g}x "
                    f"its first steps' {np.mean(start):.3g}")
        return None

    def first_bad_layer(self):
        """(parameter name, what went wrong) for the parameter that went wrong first, or None:
        the first non-finite gradient; else the first weight whose updates passed 1e-1 of it; else
        the weight with the largest update ratio in the last step."""
        if self.bad_gradient is not None:
            step, name = self.bad_gradient
            return name, f"its gradient became non-finite at step {step}"
        weights = [n for n, p in zip(self.names, self.params) if p.ndim >= 2] or self.names
        for step in range(self.steps):
            ratios = {n: self.update_ratio[n][step] for n in weights}
            above = [n for n in weights if ratios[n] > 1e-1 or not math.isfinite(ratios[n])]
            if above:
                name = max(above, key=lambda n: ratios[n] if math.isfinite(ratios[n]) else math.inf)
                return name, (f"at step {step + 1} its updates were {_of_the_weights(ratios[name])} "
                              f"(usual: about {_power(USUAL_UPDATE_RATIO)} of them)")
        if not self.steps:
            return None
        name = max(weights, key=lambda n: _finite_or(self.update_ratio[n][-1], -1.0))
        return name, f"its updates were {_of_the_weights(self.update_ratio[name][-1])}"

    def warnings(self):
        """What looks wrong, in plain words (an empty list when nothing does)."""
        found = []
        if self.bad_loss is not None:
            step, value = self.bad_loss
            text = f"loss became {_word(value)} at step {step}"
            if self.bad_gradient is not None:
                text += f"; the first non-finite gradient was {self.bad_gradient[1]}'s"
                if self.bad_gradient[0] != step:
                    text += f", at step {self.bad_gradient[0]}"
            found.append(text)
        elif self.bad_gradient is not None:
            step, name = self.bad_gradient
            found.append(f"{name}: its gradient became non-finite at step {step} (the loss was still finite)")
        if self.bad_weight is not None and self.bad_loss is None:
            found.append(f"{self.bad_weight[1]}: the weights became non-finite at step {self.bad_weight[0]}")
        recent = slice(-self.window, None)
        for name, p in zip(self.names, self.params):
            ratios = [r for r in self.update_ratio[name] if math.isfinite(r)]
            norms = self.grad_norm[name]
            if p.ndim >= 2 and ratios:     # biases start near 0, so their ratios say little
                high, typical = float(np.median(ratios[recent])), float(np.median(ratios))
                if high > TOO_HIGH_RATIO:
                    found.append(f"{name}: updates are {_of_the_weights(high)} (usual: about "
                                 f"{_power(USUAL_UPDATE_RATIO)}); the learning rate may be too high")
                elif 0 < typical < TOO_LOW_RATIO:
                    found.append(f"{name}: updates are {_power(typical)} of the weights (usual: about "
                                 f"{_power(USUAL_UPDATE_RATIO)}); the learning rate may be too low")
            last = norms[recent]
            if len(last) >= min(self.window, 5) and all(n == 0 for n in last):
                found.append(f"{name}: the gradient has been zero for the last {len(last)} steps; "
                             f"this layer is not learning")
            start = [n for n in norms[:5] if math.isfinite(n) and n > 0]
            if start and len(norms) > 5 and math.isfinite(norms[-1]) and norms[-1] > EXPLODING * np.mean(start):
                found.append(f"{name}: the gradient norm grew from {np.mean(start):.1e} to {norms[-1]:.1e}; "
                             f"the gradients are exploding (lower the learning rate)")
        for label, shares in self.dead.items():
            if shares and shares[-1] >= DEAD_SHARE:
                steps = min(self.window, self._silent[label][1])
                found.append(f"{label}: {100 * shares[-1]:.0f}% of ReLU units never fire (none was positive "
                             f"for any input in the last {steps} steps, so they pass no gradient back)")
        return found

    def report(self, file=None):
        """Print the warnings, one per line, or that there are none."""
        file = sys.stdout if file is None else file
        for text in self.warnings() or [f"no warnings after {self.steps} steps"]:
            print(f"health: {text}", file=file)

    # ---- the picture -------------------------------------------------------------------------
    def plot(self, path, title=None):
        """One PNG over the steps: the loss, each parameter's gradient norm and update-to-weight
        ratio (a line per layer, log scale; weights solid, biases dashed), each ReLU's dead share."""
        from .plots import plot_health   # matplotlib loads only when there is something to draw
        plot_health(self, path, title=title)


def _norm(array):
    flat = np.asarray(array, np.float64).ravel()
    return math.sqrt(float(np.dot(flat, flat)))


def _finite_or(value, default):
    return value if math.isfinite(value) else default


def _word(value):
    return "NaN" if math.isnan(value) else "inf" if value > 0 else "-inf"


def _of_the_weights(ratio):
    """'1e-1 of the weights', or for a step as large as the weights themselves '1.3x the weights'."""
    return f"{_power(ratio)} of the weights" if ratio < 0.5 else f"{ratio:.2g}x the weights"


def _power(value):
    """A ratio as the nearest power of ten: 0.13 -> '1e-1'."""
    if not math.isfinite(value) or value <= 0:
        return _word(value) if not math.isfinite(value) else "0"
    return f"1e{round(math.log10(value)):+d}".replace("+", "")
