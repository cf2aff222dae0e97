"""The pictures `tinygrad-edu train` writes: learning curves, first-layer filters, feature maps,
and the health report of every layer (tinygrad_edu.health.Monitor.plot).

Figures are drawn with matplotlib's Agg canvas directly (no pyplot), so nothing needs a screen
and no global matplotlib state is changed.
"""
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .checkpoint import atomic_write


def _save(fig, path):
    FigureCanvasAgg(fig)        # render with Agg, whatever backend the user's matplotlib prefers
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))   # never half a picture


def plot_curves(history, path):
    """Loss and accuracy per epoch. history: a list of dicts with epoch, train_loss,
    train_accuracy, test_accuracy (accuracies as fractions) and, when measured, test_loss."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if any("test_loss" in h for h in history):
        loss_ax.plot(epochs, [h.get("test_loss", math.nan) for h in history], "s-", label="test")
    loss_ax.set(title="loss (cross-entropy)", xlabel="epoch", ylabel="mean loss per image")
    loss_ax.legend()
    acc_ax.plot(epochs, [100 * h["train_accuracy"] for h in history], "o-", label="train")
    acc_ax.plot(epochs, [100 * h["test_accuracy"] for h in history], "s-", label="test")
    acc_ax.set(title="accuracy", xlabel="epoch", ylabel="% correct")
    acc_ax.legend()
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    _save(fig, path)


def _grid(fig, count, columns):
    rows = math.ceil(count / columns)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax in axes:
        ax.set_axis_off()
    return axes


def plot_filters(weight, path, title="conv1 filters"):
    """Each output channel's kernel of a conv weight (C_out, C_in, kH, kW), first input channel,
    on one symmetric colour scale: red excites, blue inhibits, white ignores."""
    kernels = np.asarray(weight)[:, 0]
    columns = min(len(kernels), 8)
    fig = Figure(figsize=(1.4 * columns, 1.5 * math.ceil(len(kernels) / columns) + 0.5), layout="constrained")
    limit = float(np.abs(kernels).max()) or 1.0
    for i, (ax, kernel) in enumerate(zip(_grid(fig, len(kernels), columns), kernels)):
        image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
        ax.set_title(f"filter {i}", fontsize=9)
    fig.colorbar(image, ax=fig.axes, shrink=0.8)
    fig.suptitle(f"{title} ({kernels.shape[1]}x{kernels.shape[2]})")
    _save(fig, path)


def plot_feature_maps(image, activations, path, label=None):
    """One digit and what each conv layer makes of it. image: (1, H, W) or (H, W);
    activations: {layer name: (C, h, w)} after the layer's ReLU."""
    columns = min(8, max(len(a) for a in activations.values()))
    rows = 1 + sum(math.ceil(len(a) / columns) for a in activations.values())
    fig = Figure(figsize=(1.3 * columns, 1.4 * rows + 0.4), layout="constrained")
    axes = np.asarray(fig.subplots(rows, columns, squeeze=False))
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].imshow(np.asarray(image).reshape(image.shape[-2:]), cmap="gray_r")
    axes[0, 0].set_title("input" if label is None else f"input ({label})", fontsize=9)
    row = 1
    for layer, maps in activations.items():
        maps = np.asarray(maps)
        for i, feature_map in enumerate(maps):
            ax = axes[row + i // columns, i % columns]
            ax.imshow(feature_map, cmap="viridis")
            ax.set_title(f"{layer}[{i}]", fontsize=8)
        row += math.ceil(len(maps) / columns)
    fig.suptitle("feature maps after each conv + ReLU")
    _save(fig, path)


def _steps(values, positive=True, smooth=1):
    """(step numbers from 1, values) to plot; for a log axis, zeros, NaN and inf become gaps.
    smooth > 1: a running (geometric, for a log axis) mean over that many steps, so a line per
    layer stays readable over thousands of noisy minibatch steps."""
    values = np.asarray(values, np.float64)
    if positive:
        values = np.where(np.isfinite(values) & (values > 0), values, np.nan)
    if smooth > 1 and len(values) >= smooth:
        kernel = np.full(smooth, 1 / smooth)
        values = (np.exp(np.convolve(np.log(values), kernel, "valid")) if positive
                  else np.convolve(values, kernel, "valid"))
        return np.arange(smooth, smooth + len(values)), values    # each mean at its window's last step
    return np.arange(1, len(values) + 1), values


def plot_health(monitor, path, title=None):
    """A Monitor's record over the steps, four panels: the loss, each parameter's gradient norm and
    update-to-weight ratio (log scale; one colour per layer, weights solid, biases dashed, the
    usual ratio the monitor warns by dotted), and the share of dead ReLU units per scope."""
    _save(health_figure(monitor, title), path)


def health_figure(monitor, title=None):
    """plot_health's Figure, not yet written."""
    fig = Figure(figsize=(12, 8), layout="constrained")
    (loss_ax, grad_ax), (ratio_ax, dead_ax) = fig.subplots(2, 2, sharex=True)
    smooth = max(1, monitor.steps // 100)
    loss_ax.plot(*_steps(monitor.losses), color="0.75", lw=0.5)
    loss_ax.plot(*_steps(monitor.losses, smooth=smooth), color="black", lw=1)
    loss_ax.set(title="loss", yscale="log")
    layers = list(dict.fromkeys(name.rsplit(".", 1)[0] for name in monitor.names))
    colours = {layer: f"C{i % 10}" for i, layer in enumerate(layers)}
    for name, p in zip(monitor.names, monitor.params):
        style = dict(color=colours[name.rsplit(".", 1)[0]], lw=1, ls="-" if p.ndim >= 2 else "--", label=name)
        grad_ax.plot(*_steps(monitor.grad_norm[name], smooth=smooth), **style)
        ratio_ax.plot(*_steps(monitor.update_ratio[name], smooth=smooth), **style)
    grad_ax.set(title="gradient norm ||grad||", yscale="log")
    usual = monitor.usual_update_ratio          # (health imports this module: the number comes with the monitor)
    ratio_ax.axhline(usual, color="grey", ls=":", lw=1.5, label=f"usual ({usual:g})")
    ratio_ax.set(title="update / weight  ||w_new - w_old|| / ||w_new||", yscale="log", xlabel="step")
    for label, shares in monitor.dead.items():
        dead_ax.plot(*_steps(100 * np.asarray(shares), positive=False), lw=1, label=label,
                     color=colours.get(label.split("#")[0].split("/")[0]))
    dead_ax.set(title=f"dead ReLU units (silent for the last {monitor.window} steps)", ylabel="%",
                ylim=(-2, 102), xlabel="step")
    bad = [s for s in (monitor.bad_loss, monitor.bad_gradient) if s is not None]
    for ax in (loss_ax, grad_ax, ratio_ax, dead_ax):
        ax.grid(alpha=0.3)
        if bad:
            ax.axvline(min(s[0] for s in bad), color="red", ls="--", lw=1)   # the first non-finite value
    ratio_ax.legend(fontsize=7, ncol=2)
    if monitor.dead:
        dead_ax.legend(fontsize=7)
    else:
        dead_ax.text(0.5, 0.5, "no ReLU seen\n(pass the loss to monitor.step)", ha="center", va="center",
                     transform=dead_ax.transAxes, color="grey")
    fig.suptitle((title or f"training health over {monitor.steps} steps")
                 + (f" (lines: running means over {smooth} steps)" if smooth > 1 else ""))
    return fig
