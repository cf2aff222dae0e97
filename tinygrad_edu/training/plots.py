"""The pictures `tinygrad-edu train` writes: learning curves, first-layer filters, feature maps.

Figures are drawn with matplotlib's Agg canvas directly (no pyplot), so nothing needs a screen
and no global matplotlib state is changed.
"""
import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def _save(fig, path):
    FigureCanvasAgg(fig)        # render with Agg, whatever backend the user's matplotlib prefers
    fig.savefig(path, dpi=100)


def plot_curves(history, path):
    """Loss and accuracy per epoch. history: a list of dicts with epoch, train_loss,
    train_accuracy and test_accuracy (accuracies as fractions)."""
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4), layout="constrained")
    loss_ax, acc_ax = fig.subplots(1, 2)
    loss_ax.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
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
