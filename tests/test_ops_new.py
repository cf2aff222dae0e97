"""The ops added for issue 15: values and gradients against PyTorch (skipped cleanly without it),
gradcheck by finite differences in float64 (second order where the op is smooth), and the
behaviour at kinks, ties and on bad input."""
import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import Tensor, functional as F, gradcheck

rng = np.random.default_rng(15)


def normal(*shape):
    return rng.standard_normal(shape)


def positive(*shape):
    return 0.5 + np.abs(rng.standard_normal(shape))


def distinct(*shape):
    """Values far apart (no ties, no kinks within finite-difference reach): for min, max, pools."""
    return rng.permutation(np.prod(shape, dtype=int)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)


def away_from(*points):
    """Normal values nudged at least 0.05 away from the kinks at `points`."""
    def make(*shape):
        x = 3 * rng.standard_normal(shape or (3, 4))
        for p in points:
            close = np.abs(x - p) < 0.05
            x[close] = p + 0.1
        return x
    return make


IMAGES = (2, 3, 7, 6)
T = lambda t: t  # noqa: E731  (readability in the table: the torch lambda takes torch tensors)

# name: (ours(*tensors), theirs(torch, *tensors), [input makers], gradcheck order: 0, 1 or 2)
CASES = {
    # elementwise
    "minimum": (lambda a, b: tg.minimum(a, b), lambda torch, a, b: torch.minimum(a, b),
                [lambda: normal(3, 4), lambda: normal(4)], 2),
    "rsqrt": (lambda a: a.rsqrt(), lambda torch, a: a.rsqrt(), [lambda: positive(5)], 2),
    "log2": (lambda a: a.log2(), lambda torch, a: a.log2(), [lambda: positive(5)], 2),
    "exp2": (lambda a: a.exp2(), lambda torch, a: a.exp2(), [lambda: normal(5)], 2),
    "sin": (lambda a: a.sin(), lambda torch, a: a.sin(), [lambda: normal(5)], 2),
    "cos": (lambda a: a.cos(), lambda torch, a: a.cos(), [lambda: normal(5)], 2),
    "tan": (lambda a: a.tan(), lambda torch, a: a.tan(), [lambda: normal(5)], 2),
    "sign": (lambda a: a.sign(), lambda torch, a: a.sign(), [lambda: np.array([-2.0, 0.0, 3.0])], 0),
    "floor": (lambda a: a.floor(), lambda torch, a: a.floor(), [lambda: 3 * normal(6)], 0),
    "ceil": (lambda a: a.ceil(), lambda torch, a: a.ceil(), [lambda: 3 * normal(6)], 0),
    "trunc": (lambda a: a.trunc(), lambda torch, a: a.trunc(), [lambda: 3 * normal(6)], 0),
    "round": (lambda a: a.round(), lambda torch, a: a.round(), [lambda: np.array([-1.5, -0.5, 0.5, 1.5, 2.4])], 0),
    "clamp": (lambda a: a.clamp(-0.5, 0.7), lambda torch, a: a.clamp(-0.5, 0.7), [away_from(-0.5, 0.7)], 2),
    "clip_min_only": (lambda a: a.clip(min=0.2), lambda torch, a: a.clip(min=0.2), [away_from(0.2)], 2),
    "clamp_at_bounds": (lambda a: a.clamp(0.0, 6.0), lambda torch, a: a.clamp(0.0, 6.0),
                        [lambda: np.array([-1.0, 0.0, 3.0, 6.0, 7.0])], 0),
    "leaky_relu": (lambda a: F.leaky_relu(a, 0.1), lambda torch, a: torch.nn.functional.leaky_relu(a, 0.1),
                   [away_from(0.0)], 2),
    "leaky_relu_kink": (lambda a: F.leaky_relu(a), lambda torch, a: torch.nn.functional.leaky_relu(a),
                        [lambda: np.array([-1.0, 0.0, 1.0])], 0),
    "gelu": (lambda a: F.gelu(a), lambda torch, a: torch.nn.functional.gelu(a), [lambda: normal(6)], 2),
    "gelu_tanh": (lambda a: F.gelu(a, approximate="tanh"),
                  lambda torch, a: torch.nn.functional.gelu(a, approximate="tanh"), [lambda: normal(6)], 2),
    "silu": (lambda a: F.silu(a), lambda torch, a: torch.nn.functional.silu(a), [lambda: normal(6)], 2),
    "sigmoid": (lambda a: F.sigmoid(a), lambda torch, a: torch.sigmoid(a), [lambda: normal(6)], 2),
    "tanh": (lambda a: F.tanh(a), lambda torch, a: torch.tanh(a), [lambda: normal(6)], 2),
    "softplus": (lambda a: F.softplus(a), lambda torch, a: torch.nn.functional.softplus(a),
                 [lambda: 5 * normal(6)], 2),
    "softplus_beta": (lambda a: F.softplus(a, beta=2.0, threshold=3.0),
                      lambda torch, a: torch.nn.functional.softplus(a, beta=2.0, threshold=3.0),
                      [away_from(1.5)], 2),
    "softplus_large": (lambda a: F.softplus(a), lambda torch, a: torch.nn.functional.softplus(a),
                       [lambda: np.array([-1e4, -30.0, 0.0, 25.0, 1e4])], 1),
    "elu": (lambda a: F.elu(a, 0.7), lambda torch, a: torch.nn.functional.elu(a, 0.7), [away_from(0.0)], 2),
    "elu_large": (lambda a: F.elu(a), lambda torch, a: torch.nn.functional.elu(a),
                  [lambda: np.array([-1e3, 0.0, 800.0])], 0),
    "celu": (lambda a: F.celu(a, 1.5), lambda torch, a: torch.nn.functional.celu(a, 1.5), [away_from(0.0)], 2),
    "relu6": (lambda a: F.relu6(a), lambda torch, a: torch.nn.functional.relu6(a), [away_from(0.0, 6.0)], 2),
    "relu6_kinks": (lambda a: F.relu6(a), lambda torch, a: torch.nn.functional.relu6(a),
                    [lambda: np.array([-1.0, 0.0, 3.0, 6.0, 7.0])], 0),
    "hardtanh": (lambda a: F.hardtanh(a, -2.0, 1.5), lambda torch, a: torch.nn.functional.hardtanh(a, -2.0, 1.5),
                 [away_from(-2.0, 1.5)], 2),
    "hardswish": (lambda a: F.hardswish(a), lambda torch, a: torch.nn.functional.hardswish(a),
                  [away_from(-3.0, 3.0)], 2),
    "hardswish_kinks": (lambda a: F.hardswish(a), lambda torch, a: torch.nn.functional.hardswish(a),
                        [lambda: np.array([-4.0, -3.0, 0.0, 3.0, 4.0])], 0),
    "mish": (lambda a: F.mish(a), lambda torch, a: torch.nn.functional.mish(a), [lambda: normal(6)], 2),
    "softsign": (lambda a: F.softsign(a), lambda torch, a: torch.nn.functional.softsign(a), [away_from(0.0)], 2),
    # reductions
    "min_axis": (lambda a: a.min(axis=1), lambda torch, a: a.amin(dim=1), [lambda: distinct(3, 4)], 2),
    "min_dim_keepdim": (lambda a: a.min(dim=-1, keepdim=True), lambda torch, a: a.amin(dim=-1, keepdim=True),
                        [lambda: distinct(2, 3, 4)], 2),
    "min_all": (lambda a: a.min(), lambda torch, a: a.amin(), [lambda: distinct(3, 4)], 2),
    "min_ties": (lambda a: a.min(axis=0), lambda torch, a: a.amin(dim=0),
                 [lambda: np.array([[1.0, 2.0], [1.0, 0.0], [3.0, 0.0]])], 0),
    "var": (lambda a: a.var(axis=1), lambda torch, a: a.var(dim=1), [lambda: normal(3, 5)], 2),
    "var_correction0": (lambda a: a.var(dim=(0, 2), correction=0, keepdim=True),
                        lambda torch, a: a.var(dim=(0, 2), correction=0, keepdim=True), [lambda: normal(2, 3, 4)], 2),
    "var_all": (lambda a: a.var(), lambda torch, a: a.var(), [lambda: normal(3, 4)], 2),
    "std": (lambda a: a.std(axis=-1), lambda torch, a: a.std(dim=-1), [lambda: normal(3, 5)], 2),
    "cumsum": (lambda a: a.cumsum(1), lambda torch, a: a.cumsum(1), [lambda: normal(3, 4)], 2),
    "cumsum_dim": (lambda a: a.cumsum(dim=-3), lambda torch, a: a.cumsum(dim=-3), [lambda: normal(3, 2, 2)], 2),
    "softmax_method": (lambda a: a.softmax(dim=0), lambda torch, a: a.softmax(dim=0), [lambda: normal(3, 4)], 2),
    "log_softmax_method": (lambda a: a.log_softmax(1), lambda torch, a: a.log_softmax(1), [lambda: normal(3, 4)], 2),
    "softmax_dim": (lambda a: F.softmax(a, dim=0), lambda torch, a: torch.softmax(a, dim=0), [lambda: normal(3, 4)], 1),
    "sum_dim": (lambda a: a.sum(dim=-1, keepdim=True), lambda torch, a: a.sum(dim=-1, keepdim=True),
                [lambda: normal(3, 4)], 1),
    "mean_dim": (lambda a: a.mean(dim=(0, 2)), lambda torch, a: a.mean(dim=(0, 2)), [lambda: normal(2, 3, 4)], 1),
    "max_dim": (lambda a: a.max(dim=1, keepdim=True), lambda torch, a: a.amax(dim=1, keepdim=True),
                [lambda: distinct(3, 4)], 1),
    # shape
    "flip": (lambda a: a.flip(0, -1), lambda torch, a: a.flip(0, -1), [lambda: normal(2, 3, 4)], 2),
    "flip_tuple": (lambda a: a.flip((1,)), lambda torch, a: a.flip((1,)), [lambda: normal(2, 3)], 1),
    "squeeze_all": (lambda a: a.squeeze(), lambda torch, a: a.squeeze(), [lambda: normal(1, 3, 1, 2)], 1),
    "squeeze_axis": (lambda a: a.squeeze(-2), lambda torch, a: a.squeeze(-2), [lambda: normal(1, 3, 1, 2)], 1),
    "squeeze_not_one": (lambda a: a.squeeze(dim=1), lambda torch, a: a.squeeze(dim=1), [lambda: normal(1, 3)], 1),
    "unsqueeze": (lambda a: a.unsqueeze(-1), lambda torch, a: a.unsqueeze(-1), [lambda: normal(2, 3)], 1),
    "unsqueeze_front": (lambda a: a.unsqueeze(dim=0), lambda torch, a: a.unsqueeze(dim=0), [lambda: normal(3)], 1),
    "flatten": (lambda a: a.flatten(1), lambda torch, a: a.flatten(1), [lambda: normal(2, 3, 4)], 1),
    "flatten_range": (lambda a: a.flatten(start_dim=1, end_dim=2), lambda torch, a: a.flatten(1, 2),
                      [lambda: normal(2, 3, 4, 2)], 1),
    "permute": (lambda a: a.permute(2, 0, 1), lambda torch, a: a.permute(2, 0, 1), [lambda: normal(2, 3, 4)], 2),
    "permute_negative": (lambda a: a.permute((-1, 0, 1)), lambda torch, a: a.permute(-1, 0, 1),
                         [lambda: normal(2, 3, 4)], 1),
    "expand": (lambda a: a.expand(2, -1, 4), lambda torch, a: a.expand(2, -1, 4), [lambda: normal(3, 1)], 2),
    "repeat": (lambda a: a.repeat(2, 1, 3), lambda torch, a: a.repeat(2, 1, 3), [lambda: normal(3, 2)], 2),
    "gather": (lambda a: a.gather(1, np.array([[0, 0, 2], [1, 2, 1]])),
               lambda torch, a: a.gather(1, torch.tensor([[0, 0, 2], [1, 2, 1]])), [lambda: normal(2, 4)], 2),
    "gather_dim0_smaller": (lambda a: a.gather(dim=0, index=Tensor(np.array([[2, 0], [2, 2]]))),
                            lambda torch, a: a.gather(0, torch.tensor([[2, 0], [2, 2]])), [lambda: normal(3, 3)], 1),
    "tril": (lambda a: a.tril(), lambda torch, a: a.tril(), [lambda: normal(2, 3, 4)], 1),
    "triu_diagonal": (lambda a: a.triu(1), lambda torch, a: a.triu(1), [lambda: normal(4, 3)], 1),
    "tril_negative": (lambda a: a.tril(-1), lambda torch, a: a.tril(-1), [lambda: normal(4, 4)], 1),
    "split": (lambda a: tg.concatenate([p * (i + 1) for i, p in enumerate(tg.split(a, 2, axis=1))], axis=1),
              lambda torch, a: torch.cat([p * (i + 1) for i, p in enumerate(torch.split(a, 2, dim=1))], dim=1),
              [lambda: normal(2, 5)], 1),
    "split_sections": (lambda a: tg.concatenate([p * (i + 1) for i, p in enumerate(a.split([1, 3], dim=0))]),
                       lambda torch, a: torch.cat([p * (i + 1) for i, p in enumerate(a.split([1, 3], dim=0))]),
                       [lambda: normal(4, 2)], 1),
    "chunk": (lambda a: tg.concatenate([p * (i + 1) for i, p in enumerate(tg.chunk(a, 3, axis=-1))], axis=-1),
              lambda torch, a: torch.cat([p * (i + 1) for i, p in enumerate(torch.chunk(a, 3, dim=-1))], dim=-1),
              [lambda: normal(2, 7)], 1),
    "pad_constant": (lambda a: F.pad(a, (1, 2, 0, 3), value=0.5),
                     lambda torch, a: torch.nn.functional.pad(a, (1, 2, 0, 3), value=0.5), [lambda: normal(2, 3, 4)], 2),
    "pad_crop": (lambda a: F.pad(a, (-1, 2, 1, -2)), lambda torch, a: torch.nn.functional.pad(a, (-1, 2, 1, -2)),
                 [lambda: normal(2, 4, 5)], 2),
    "pad_reflect": (lambda a: F.pad(a, (2, 1, 1, 2), mode="reflect"),
                    lambda torch, a: torch.nn.functional.pad(a, (2, 1, 1, 2), mode="reflect"),
                    [lambda: normal(1, 2, 3, 4)], 2),
    "pad_replicate": (lambda a: F.pad(a, (3, 1, 0, 2), mode="replicate"),
                      lambda torch, a: torch.nn.functional.pad(a, (3, 1, 0, 2), mode="replicate"),
                      [lambda: normal(1, 2, 3, 4)], 2),
    "pad_reflect_1d": (lambda a: F.pad(a, (2, 2), mode="reflect"),
                       lambda torch, a: torch.nn.functional.pad(a, (2, 2), mode="reflect"), [lambda: normal(2, 3, 5)], 1),
    # pooling and 1-D ops
    "max_pool2d_dilation": (lambda a: F.max_pool2d(a, 2, stride=1, dilation=2),
                            lambda torch, a: torch.nn.functional.max_pool2d(a, 2, stride=1, dilation=2),
                            [lambda: distinct(*IMAGES)], 2),
    "max_pool2d_ceil": (lambda a: F.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
                        lambda torch, a: torch.nn.functional.max_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
                        [lambda: distinct(*IMAGES)], 2),
    "max_pool2d_ceil_dilation": (lambda a: F.max_pool2d(a, (2, 3), stride=(2, 3), dilation=(2, 1), ceil_mode=True),
                                 lambda torch, a: torch.nn.functional.max_pool2d(
                                     a, (2, 3), stride=(2, 3), dilation=(2, 1), ceil_mode=True),
                                 [lambda: distinct(*IMAGES)], 2),
    "avg_pool2d_ceil": (lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
                        lambda torch, a: torch.nn.functional.avg_pool2d(a, 3, stride=2, padding=1, ceil_mode=True),
                        [lambda: normal(*IMAGES)], 2),
    "avg_pool2d_exclude_pad": (lambda a: F.avg_pool2d(a, 3, stride=2, padding=1, count_include_pad=False),
                               lambda torch, a: torch.nn.functional.avg_pool2d(
                                   a, 3, stride=2, padding=1, count_include_pad=False),
                               [lambda: normal(*IMAGES)], 2),
    "avg_pool2d_ceil_exclude_pad": (lambda a: F.avg_pool2d(a, 2, stride=2, padding=1, ceil_mode=True,
                                                           count_include_pad=False),
                                    lambda torch, a: torch.nn.functional.avg_pool2d(
                                        a, 2, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
                                    [lambda: normal(*IMAGES)], 1),
    "adaptive_avg_pool2d": (lambda a: F.adaptive_avg_pool2d(a, (3, 4)),
                            lambda torch, a: torch.nn.functional.adaptive_avg_pool2d(a, (3, 4)),
                            [lambda: normal(*IMAGES)], 2),
    "adaptive_avg_pool2d_1": (lambda a: F.adaptive_avg_pool2d(a, 1),
                              lambda torch, a: torch.nn.functional.adaptive_avg_pool2d(a, 1), [lambda: normal(*IMAGES)], 1),
    "adaptive_avg_pool2d_none": (lambda a: F.adaptive_avg_pool2d(a, (None, 5)),
                                 lambda torch, a: torch.nn.functional.adaptive_avg_pool2d(a, (None, 5)),
                                 [lambda: normal(*IMAGES)], 1),
    "conv1d": (lambda a, w, b: F.conv1d(a, w, b, stride=2, padding=1, dilation=2),
               lambda torch, a, w, b: torch.nn.functional.conv1d(a, w, b, stride=2, padding=1, dilation=2),
               [lambda: normal(2, 4, 9), lambda: normal(3, 4, 3), lambda: normal(3)], 2),
    "conv1d_groups_same": (lambda a, w: F.conv1d(a, w, padding="same", groups=2),
                           lambda torch, a, w: torch.nn.functional.conv1d(a, w, padding="same", groups=2),
                           [lambda: normal(2, 4, 7), lambda: normal(6, 2, 4)], 2),
    "max_pool1d": (lambda a: F.max_pool1d(a, 3, stride=2, padding=1, ceil_mode=True),
                   lambda torch, a: torch.nn.functional.max_pool1d(a, 3, stride=2, padding=1, ceil_mode=True),
                   [lambda: distinct(2, 3, 8)], 2),
    "avg_pool1d": (lambda a: F.avg_pool1d(a, 3, stride=2, padding=1, count_include_pad=False),
                   lambda torch, a: torch.nn.functional.avg_pool1d(a, 3, stride=2, padding=1, count_include_pad=False),
                   [lambda: normal(2, 3, 8)], 2),
    # losses
    "nll_loss": (lambda a: F.nll_loss(F.log_softmax(a, axis=1), np.array([0, 2, 1, 2])),
                 lambda torch, a: torch.nn.functional.nll_loss(torch.log_softmax(a, 1), torch.tensor([0, 2, 1, 2])),
                 [lambda: normal(4, 3)], 2),
    "nll_loss_weight_ignore": (lambda a: F.nll_loss(a, np.array([0, 2, -1, 2]), weight=np.array([0.2, 1.0, 3.0]),
                                                    ignore_index=-1, reduction="sum"),
                               lambda torch, a: torch.nn.functional.nll_loss(
                                   a, torch.tensor([0, 2, -1, 2]), weight=torch.tensor([0.2, 1.0, 3.0]),
                                   ignore_index=-1, reduction="sum"),
                               [lambda: normal(4, 3)], 1),
    "cross_entropy_weight": (lambda a: F.cross_entropy(a, np.array([0, 2, 1, 2]), weight=np.array([0.2, 1.0, 3.0])),
                             lambda torch, a: torch.nn.functional.cross_entropy(
                                 a, torch.tensor([0, 2, 1, 2]), weight=torch.tensor([0.2, 1.0, 3.0])),
                             [lambda: normal(4, 3)], 2),
    "cross_entropy_ignore": (lambda a: F.cross_entropy(a, np.array([0, -100, 1, 2])),
                             lambda torch, a: torch.nn.functional.cross_entropy(a, torch.tensor([0, -100, 1, 2])),
                             [lambda: normal(4, 3)], 2),
    "cross_entropy_smoothing": (lambda a: F.cross_entropy(a, np.array([0, 2, 1, 2]), label_smoothing=0.1),
                                lambda torch, a: torch.nn.functional.cross_entropy(
                                    a, torch.tensor([0, 2, 1, 2]), label_smoothing=0.1),
                                [lambda: normal(4, 3)], 2),
    "cross_entropy_all_options": (lambda a: F.cross_entropy(a, np.array([0, 5, 1, 2]), weight=np.array([0.2, 1.0, 3.0]),
                                                            ignore_index=5, label_smoothing=0.3),
                                  lambda torch, a: torch.nn.functional.cross_entropy(
                                      a, torch.tensor([0, 5, 1, 2]), weight=torch.tensor([0.2, 1.0, 3.0]),
                                      ignore_index=5, label_smoothing=0.3),
                                  [lambda: normal(4, 3)], 2),
    "cross_entropy_options_none": (lambda a: F.cross_entropy(a, np.array([0, 5, 1, 2]), weight=np.array([0.2, 1.0, 3.0]),
                                                             ignore_index=5, label_smoothing=0.3, reduction="none"),
                                   lambda torch, a: torch.nn.functional.cross_entropy(
                                       a, torch.tensor([0, 5, 1, 2]), weight=torch.tensor([0.2, 1.0, 3.0]),
                                       ignore_index=5, label_smoothing=0.3, reduction="none"),
                                   [lambda: normal(4, 3)], 1),
    "mse_loss": (lambda a, b: F.mse_loss(a, b), lambda torch, a, b: torch.nn.functional.mse_loss(a, b),
                 [lambda: normal(3, 4), lambda: normal(3, 4)], 2),
    "mse_loss_sum": (lambda a, b: F.mse_loss(a, b, reduction="sum"),
                     lambda torch, a, b: torch.nn.functional.mse_loss(a, b, reduction="sum"),
                     [lambda: normal(5), lambda: normal(5)], 1),
    "l1_loss": (lambda a, b: F.l1_loss(a, b), lambda torch, a, b: torch.nn.functional.l1_loss(a, b),
                [lambda: normal(3, 4), lambda: normal(3, 4)], 2),
    "bce_with_logits": (lambda a, t: F.binary_cross_entropy_with_logits(a, t),
                        lambda torch, a, t: torch.nn.functional.binary_cross_entropy_with_logits(a, t),
                        [lambda: 3 * normal(6), lambda: rng.uniform(0, 1, 6)], 2),
    "bce_with_logits_weights": (lambda a, t: F.binary_cross_entropy_with_logits(
                                    a, t, weight=np.array([1.0, 2.0, 0.5]), pos_weight=np.array([3.0, 1.0, 0.2]),
                                    reduction="none"),
                                lambda torch, a, t: torch.nn.functional.binary_cross_entropy_with_logits(
                                    a, t, weight=torch.tensor([1.0, 2.0, 0.5]),
                                    pos_weight=torch.tensor([3.0, 1.0, 0.2]), reduction="none"),
                                [lambda: 3 * normal(2, 3), lambda: rng.uniform(0, 1, (2, 3))], 2),
    "bce_with_logits_large": (lambda a, t: F.binary_cross_entropy_with_logits(a, t, reduction="none"),
                              lambda torch, a, t: torch.nn.functional.binary_cross_entropy_with_logits(
                                  a, t, reduction="none"),
                              [lambda: np.array([-1e4, -50.0, 50.0, 1e4]), lambda: np.array([1.0, 0.0, 1.0, 0.0])], 0),
    # normalisation and attention
    "batch_norm_train_nchw": (lambda a, w, b: F.batch_norm(a, None, None, w, b, training=True),
                              lambda torch, a, w, b: torch.nn.functional.batch_norm(a, None, None, w, b, training=True),
                              [lambda: normal(3, 2, 4, 3), lambda: normal(2), lambda: normal(2)], 2),
    "batch_norm_train_nc": (lambda a: F.batch_norm(a, None, None, training=True, eps=1e-3),
                            lambda torch, a: torch.nn.functional.batch_norm(a, None, None, training=True, eps=1e-3),
                            [lambda: normal(5, 3)], 2),
    "batch_norm_eval": (lambda a, w, b: F.batch_norm(a, np.array([0.5, -1.0]), np.array([2.0, 0.3]), w, b),
                        lambda torch, a, w, b: torch.nn.functional.batch_norm(
                            a, torch.tensor([0.5, -1.0]), torch.tensor([2.0, 0.3]), w, b),
                        [lambda: normal(3, 2, 4, 3), lambda: normal(2), lambda: normal(2)], 2),
    "layer_norm": (lambda a, w, b: F.layer_norm(a, (3, 4), w, b),
                   lambda torch, a, w, b: torch.nn.functional.layer_norm(a, (3, 4), w, b),
                   [lambda: normal(2, 3, 4), lambda: normal(3, 4), lambda: normal(3, 4)], 2),
    "layer_norm_int": (lambda a: F.layer_norm(a, 5), lambda torch, a: torch.nn.functional.layer_norm(a, (5,)),
                       [lambda: normal(3, 5)], 2),
    "sdpa": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v),
             lambda torch, q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v),
             [lambda: normal(2, 3, 4), lambda: normal(2, 5, 4), lambda: normal(2, 5, 2)], 2),
    "sdpa_causal": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
                    lambda torch, q, k, v: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True),
                    [lambda: normal(4, 3), lambda: normal(4, 3), lambda: normal(4, 2)], 2),
    "sdpa_bool_mask": (lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=MASK, scale=0.3),
                       lambda torch, q, k, v: torch.nn.functional.scaled_dot_product_attention(
                           q, k, v, attn_mask=torch.tensor(MASK), scale=0.3),
                       [lambda: normal(3, 4), lambda: normal(5, 4), lambda: normal(5, 2)], 2),
    "sdpa_float_mask": (lambda q, k, v, m: F.scaled_dot_product_attention(q, k, v, attn_mask=m),
                        lambda torch, q, k, v, m: torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=m),
                        [lambda: normal(3, 4), lambda: normal(5, 4), lambda: normal(5, 2), lambda: normal(3, 5)], 2),
}
MASK = np.array([[True, False, True, True, False], [False, True, True, True, True], [True, True, False, False, True]])


def _inputs(makers):
    return [np.asarray(m(), np.float64) for m in makers]


@pytest.mark.filterwarnings("ignore:Using padding='same'")       # PyTorch's note on an even kernel
@pytest.mark.parametrize("name", list(CASES))
def test_against_pytorch(name):
    torch = pytest.importorskip("torch")
    ours_fn, torch_fn, makers, _ = CASES[name]
    arrays = _inputs(makers)
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    default, _ = torch.get_default_dtype(), torch.set_default_dtype(torch.float64)   # the cases' constants
    try:
        out, ref = ours_fn(*ours), torch_fn(torch, *theirs)
    finally:
        torch.set_default_dtype(default)
    assert out.shape == tuple(ref.shape), name
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=name)
    weights = rng.standard_normal(tuple(ref.shape))
    (out * Tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs)):
        expected = np.zeros(a.shape) if b.grad is None else b.grad.numpy()
        got = np.zeros(a.shape) if a.grad is None else a.grad.data
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=f"{name}: gradient of input {i}")


@pytest.mark.parametrize("name", [n for n, case in CASES.items() if case[3]])
def test_gradcheck(name):
    ours_fn, _, makers, order = CASES[name]
    inputs = [Tensor(a, requires_grad=True) for a in _inputs(makers)]
    assert gradcheck(ours_fn, inputs, second_order=order == 2)


@pytest.mark.parametrize("name", list(CASES))
def test_float32_stays_float32(name):
    """Training runs in float32: no constant inside an op may promote it to float64."""
    ours_fn, _, makers, _ = CASES[name]
    inputs = [Tensor(a.astype(np.float32), requires_grad=True) for a in _inputs(makers)]
    out = ours_fn(*inputs)
    assert out.dtype == np.float32
    grads = tg.grad(out.sum(), inputs)
    assert all(g.dtype == np.float32 for g in grads)


# ---- non-differentiable ops --------------------------------------------------------------------
def test_argmax_argmin_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.array([[1.0, 3.0, 3.0, 0.0], [2.0, -1.0, 5.0, -1.0]])
    t, ours = torch.tensor(x), Tensor(x)
    for method in ("argmax", "argmin"):
        for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": -1, "keepdim": False},
                       {"keepdim": True}):
            ours_kwargs = {("axis" if k == "dim" else "keepdims"): v for k, v in kwargs.items()}
            got, want = getattr(ours, method)(**ours_kwargs), getattr(t, method)(**kwargs)
            assert got.dtype == np.int64
            np.testing.assert_array_equal(got.data, want.numpy(), err_msg=f"{method} {kwargs}")
            np.testing.assert_array_equal(getattr(ours, method)(**kwargs).data, want.numpy())


def test_argmax_on_known_values():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [7.0, -1.0, 5.0]]))
    assert x.argmax().item() == 3
    assert x.argmax(axis=1).data.tolist() == [1, 0]        # the first of tied maxima
    assert x.argmin(dim=0).data.tolist() == [0, 1, 0]


@pytest.mark.parametrize("op, symbol", [(lambda x: x // 2, "//"), (lambda x: x % 2, "%"),
                                        (lambda x: 7.0 // x, "//"), (lambda x: 7.0 % x, "%")])
def test_floordiv_and_mod_refuse_a_gradient(op, symbol):
    x = Tensor(np.array([1.5, -2.5, 4.0]), requires_grad=True)
    y = op(x)
    with pytest.raises(RuntimeError, match=f"{'floordiv' if symbol == '//' else 'mod'}: x {symbol} y is not "
                                           f"differentiable"):
        y.sum().backward()


def test_floordiv_and_mod_values_follow_python():
    x = np.array([7.0, -7.0, 7.5, -0.5])
    assert (Tensor(x) // 2).data.tolist() == [3.0, -4.0, 3.0, -1.0]
    assert (Tensor(x) % 2).data.tolist() == [1.0, 1.0, 1.5, 1.5]
    assert (Tensor(x) % -3).data.tolist() == (x % -3).tolist()
    assert (10 // Tensor(np.array([3.0, -3.0]))).data.tolist() == [3.0, -4.0]
    assert (Tensor(np.array([7, -7])) // 2).data.tolist() == [3, -4]          # integers stay integers


@pytest.mark.parametrize("method", ["sign", "floor", "ceil", "trunc", "round"])
def test_piecewise_constant_ops_give_zero_gradients(method):
    x = Tensor(np.array([-1.7, -0.5, 0.0, 0.5, 2.5]), requires_grad=True)
    (getattr(x, method)() * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, np.zeros(5))


def test_round_halves_to_even_as_pytorch():
    assert Tensor(np.array([-1.5, -0.5, 0.5, 1.5, 2.5])).round().data.tolist() == [-2.0, -0.0, 0.0, 2.0, 2.0]


# ---- ties, kinks and values worth spelling out -------------------------------------------------
def test_min_splits_the_gradient_of_ties():
    x = Tensor(np.array([1.0, 1.0, 2.0]), requires_grad=True)
    x.min().backward()
    assert x.grad.data.tolist() == [0.5, 0.5, 0.0]
    a, b = Tensor(np.array([1.0, 2.0]), requires_grad=True), Tensor(np.array([1.0, 0.0]), requires_grad=True)
    tg.minimum(a, b).sum().backward()
    assert a.grad.data.tolist() == [0.5, 0.0] and b.grad.data.tolist() == [0.5, 1.0]


def test_clamp_passes_the_gradient_at_its_bounds_but_relu6_does_not():
    x = Tensor(np.array([-1.0, 0.0, 3.0, 6.0, 7.0]), requires_grad=True)
    x.clamp(0, 6).sum().backward()
    assert x.grad.data.tolist() == [0, 1, 1, 1, 0]
    x.grad = None
    F.relu6(x).sum().backward()
    assert x.grad.data.tolist() == [0, 0, 1, 0, 0]


def test_var_and_std_values():
    x = Tensor(np.array([[1.0, 2.0, 3.0, 4.0], [2.0, 2.0, 2.0, 2.0]]))
    assert x.var(axis=1).data.tolist() == pytest.approx([5 / 3, 0.0])
    assert x.var(axis=1, correction=0).data.tolist() == pytest.approx([1.25, 0.0])
    assert x.std(dim=1, keepdim=True).shape == (2, 1)
    assert np.isnan(Tensor(np.array([3.0])).var().item())              # one value, correction 1: NaN


def test_std_of_a_constant_slice_has_zero_gradient_as_pytorch():
    x = Tensor(np.array([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]]), requires_grad=True)
    x.std(axis=1).sum().backward()
    assert x.grad.data[0].tolist() == [0.0, 0.0, 0.0] and np.isfinite(x.grad.data).all()


def test_cumsum_values_and_gradient():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    y = x.cumsum(0)
    assert y.data.tolist() == [1, 3, 6]
    (y * Tensor(np.array([1.0, 10.0, 100.0]))).sum().backward()
    assert x.grad.data.tolist() == [111, 110, 100]


def test_shape_ops_known_values():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    assert x.flip(1).data.tolist() == [[2, 1, 0], [5, 4, 3]]
    assert x.permute(1, 0).shape == (3, 2)
    assert x.unsqueeze(1).shape == (2, 1, 3) and x.unsqueeze(-1).shape == (2, 3, 1)
    assert Tensor(np.zeros((1, 2, 1))).squeeze().shape == (2,)
    assert Tensor(np.zeros((1, 2, 1))).squeeze((0, 1)).shape == (2, 1)
    assert x.flatten().shape == (6,) and Tensor(np.float32(2)).flatten().shape == (1,)
    assert x.expand(4, 2, 3).shape == (4, 2, 3)
    assert x.repeat(1, 2).data.tolist() == [[0, 1, 2, 0, 1, 2], [3, 4, 5, 3, 4, 5]]
    assert x.gather(1, np.array([[2], [0]])).data.tolist() == [[2], [3]]
    assert x.tril().data.tolist() == [[0, 0, 0], [3, 4, 0]]
    assert x.triu(1).data.tolist() == [[0, 1, 2], [0, 0, 5]]
    assert [p.shape for p in tg.split(Tensor(np.zeros(7)), 3)] == [(3,), (3,), (1,)]
    assert [p.shape for p in tg.chunk(Tensor(np.zeros(5)), 3)] == [(2,), (2,), (1,)]
    assert F.pad(Tensor(np.array([1.0, 2.0, 3.0])), (2, 1), mode="reflect").data.tolist() == [3, 2, 1, 2, 3, 2]
    assert F.pad(Tensor(np.array([1.0, 2.0])), (2, 1), mode="replicate").data.tolist() == [1, 1, 1, 2, 2]


def test_gather_accumulates_repeated_indices():
    x = Tensor(np.array([[1.0, 2.0, 3.0]]), requires_grad=True)
    x.gather(1, np.array([[0, 0, 2, 0]])).sum().backward()
    assert x.grad.data.tolist() == [[3.0, 0.0, 1.0]]


def test_reflect_pad_gradient_collects_every_copy():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    F.pad(x, (2, 2), mode="reflect").sum().backward()     # 3 2 [1 2 3] 2 1
    assert x.grad.data.tolist() == [2.0, 3.0, 2.0]


def test_softplus_and_bce_stay_finite_for_huge_logits():
    x = Tensor(np.array([-1e4, 1e4]), requires_grad=True)
    y = F.softplus(x)
    assert y.data.tolist() == [0.0, 1e4]
    loss = F.binary_cross_entropy_with_logits(x, Tensor(np.array([1.0, 0.0])), reduction="sum")
    loss.backward()
    assert loss.item() == pytest.approx(2e4) and x.grad.data.tolist() == [-1.0, 1.0]


# ---- pooling extras ----------------------------------------------------------------------------
def test_max_pool2d_return_indices_match_pytorch():
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 7, 8))
    for kwargs in ({"kernel_size": 2}, {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
                   {"kernel_size": (2, 3), "stride": 1, "dilation": (2, 1)}):
        y, idx = F.max_pool2d(Tensor(x, requires_grad=True), return_indices=True, **kwargs)
        ty, tidx = torch.nn.functional.max_pool2d(torch.tensor(x), return_indices=True, **kwargs)
        np.testing.assert_array_equal(y.data, ty.numpy())
        np.testing.assert_array_equal(idx.data, tidx.numpy())
        assert idx.dtype == np.int64
    y, idx = F.max_pool1d(Tensor(x[:, :, 0]), 3, stride=2, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool1d(torch.tensor(x[:, :, 0]), 3, stride=2, return_indices=True)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


def test_max_pool2d_indices_known_values():
    x = Tensor(np.array([[[[1.0, 5.0, 2.0], [4.0, 0.0, 9.0], [3.0, 8.0, 7.0]]]]))
    y, idx = F.max_pool2d(x, 2, stride=1, return_indices=True)
    assert y.data[0, 0].tolist() == [[5, 9], [8, 9]]
    assert idx.data[0, 0].tolist() == [[1, 5], [7, 5]]          # row * 3 + column


def test_pool_ceil_mode_output_sizes_match_the_formula():
    x = Tensor(np.zeros((1, 1, 7, 7), np.float32))
    assert F.max_pool2d(x, 2, ceil_mode=True).shape == (1, 1, 4, 4)
    assert F.max_pool2d(x, 2).shape == (1, 1, 3, 3)
    # a last window that would start in the right padding is dropped: ceil((5 + 2 - 2) / 2) + 1 = 4,
    # but window 3 would start at 6, past the input's last row 5 + padding 1: so 3
    assert F.avg_pool2d(Tensor(np.zeros((1, 1, 5, 5))), 2, stride=2, padding=1, ceil_mode=True).shape == (1, 1, 3, 3)
    assert F.avg_pool2d(Tensor(np.zeros((1, 1, 6, 6))), 3, stride=2, padding=1, ceil_mode=True).shape == (1, 1, 4, 4)


# ---- dropout and batch norm --------------------------------------------------------------------
def test_dropout_is_inverted_reproducible_and_identity_in_eval():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    y = F.dropout(x, 0.3, rng=7)
    kept = y.data != 0
    assert set(np.unique(y.data)) == {0.0, 1 / 0.7}
    assert abs(kept.mean() - 0.7) < 0.02
    np.testing.assert_array_equal(F.dropout(x, 0.3, rng=7).data, y.data)            # same seed, same mask
    assert F.dropout(x, 0.3, training=False) is x and F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).data.any()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, y.data)      # the gradient is the same mask and scale
    with pytest.raises(ValueError, match=r"dropout: p must be a probability in \[0, 1\], got 1.5"):
        F.dropout(x, 1.5)


def test_batch_norm_updates_running_statistics_as_pytorch():
    torch = pytest.importorskip("torch")
    for shape in ((6, 3, 4, 5), (8, 3)):
        x = rng.standard_normal(shape) * 2 + 1
        ours_mean, ours_var = Tensor(np.zeros(3)), np.ones(3)          # a Tensor and a bare array
        their_mean, their_var = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
        for _ in range(2):
            y = F.batch_norm(Tensor(x), ours_mean, ours_var, training=True, momentum=0.2)
            ty = torch.nn.functional.batch_norm(torch.tensor(x), their_mean, their_var, training=True, momentum=0.2)
        np.testing.assert_allclose(y.data, ty.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours_mean.data, their_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(ours_var, their_var.numpy(), rtol=1e-12)


def test_batch_norm_known_values():
    x = Tensor(np.array([[1.0], [3.0]]))
    running_mean, running_var = np.zeros(1), np.ones(1)
    y = F.batch_norm(x, running_mean, running_var, training=True, momentum=0.5, eps=0.0)
    assert y.data.ravel().tolist() == [-1.0, 1.0]
    assert running_mean.tolist() == [1.0] and running_var.tolist() == [1.5]    # 0.5 * 1 + 0.5 * var 2 (unbiased)
    assert F.batch_norm(x, running_mean, running_var, eps=0.0).data.ravel().tolist() == \
        pytest.approx([0.0, 2 / np.sqrt(1.5)])


def test_batch_norm_and_layer_norm_errors():
    with pytest.raises(ValueError, match=r"batch_norm: training needs more than 1 value per channel"):
        F.batch_norm(Tensor(np.zeros((1, 3))), None, None, training=True)
    with pytest.raises(ValueError, match=r"batch_norm: training=False normalises with the running statistics"):
        F.batch_norm(Tensor(np.zeros((2, 3))), None, None)
    with pytest.raises(ValueError, match=r"batch_norm: running_mean must have shape \(3,\), one per channel, got \(4,\)"):
        F.batch_norm(Tensor(np.zeros((2, 3))), np.zeros(4), np.ones(3))
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \(4,\) must be the last axes of x"):
        F.layer_norm(Tensor(np.zeros((2, 3))), 4)


def test_normalize_second_backward_without_residuals():
    """A second backward through batch norm (residuals freed) gives the same gradient."""
    x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
    y = (F.batch_norm(x, None, None, training=True) * Tensor(rng.standard_normal((4, 3)))).sum()
    first = tg.grad(y, [x])[0].data
    np.testing.assert_allclose(tg.grad(y, [x])[0].data, first, rtol=1e-12)


# ---- factories ---------------------------------------------------------------------------------
def test_factories():
    assert Tensor.full((2, 3), 1.5).data.tolist() == [[1.5] * 3] * 2 and Tensor.full((2,), 1.5).dtype == np.float32
    assert Tensor.full(3, 7).dtype == np.int64
    x = Tensor(np.zeros((2, 2), np.float64))
    assert Tensor.zeros_like(x).dtype == np.float64 and Tensor.ones_like(x).data.tolist() == [[1, 1], [1, 1]]
    assert Tensor.arange(4).data.tolist() == [0, 1, 2, 3] and Tensor.arange(4).dtype == np.int64
    assert Tensor.arange(1, 2, 0.25).data.tolist() == [1, 1.25, 1.5, 1.75]
    assert Tensor.arange(1, 2, 0.25).dtype == np.float32
    assert Tensor.eye(3).data.tolist() == np.eye(3).tolist() and Tensor.eye(2, 3).shape == (2, 3)
    assert Tensor.full((2,), 0.0, requires_grad=True).requires_grad


# ---- PyTorch's keyword names and bad input ------------------------------------------------------
def test_dim_and_keepdim_aliases_everywhere():
    x = Tensor(rng.standard_normal((2, 3, 4)))
    for method in ("sum", "mean", "max", "min", "var", "std"):
        np.testing.assert_allclose(getattr(x, method)(dim=1, keepdim=True).data,
                                   getattr(x, method)(axis=1, keepdims=True).data)
    np.testing.assert_allclose(tg.concatenate([x, x], dim=2).data, np.concatenate([x.data] * 2, 2))
    np.testing.assert_allclose(tg.stack([x, x], dim=-1).data, np.stack([x.data] * 2, -1))
    assert x.flip(dims=(0, 2)).data.tolist() == x.flip(0, 2).data.tolist()
    assert x.permute(dims=(2, 0, 1)).shape == (4, 2, 3)
    assert [p.shape for p in tg.split(x, 2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in tg.chunk(x, 3, dim=1)] == [(2, 1, 4)] * 3
    assert F.var(x, dim=0).shape == (3, 4) and F.cumsum(x, dim=1).shape == (2, 3, 4)
    with pytest.raises(TypeError, match=r"sum: got both axis= and dim= \(its PyTorch name\); pass one"):
        x.sum(axis=1, dim=1)


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.permute(0, 0, 1), ValueError, r"permute: axes \(0, 0, 1\) are not a permutation of the 3 axes"),
    (lambda x: x.permute(0, 1), ValueError, r"permute: axes \(0, 1\) are not a permutation of the 3 axes"),
    (lambda x: x.permute(0, 1, 5), np.exceptions.AxisError, r"permute: axis 5 is out of range for a tensor with 3 "),
    (lambda x: x.permute(0, 1, -4), IndexError, r"permute: axis -4 is out of range .* \(valid: -3 to 2\)"),
    (lambda x: x.expand(2, 5, 4), ValueError, r"expand: cannot expand shape \(2, 3, 4\) to \(2, 5, 4\)"),
    (lambda x: x.unsqueeze(5), ValueError, r"unsqueeze: axis 5 is out of range"),
    (lambda x: x.flatten(2, 1), ValueError, r"flatten: start_axis 2 comes after end_axis 1"),
    (lambda x: x.repeat(2, 2), ValueError, r"repeat: sizes \(2, 2\) must be non-negative and at least as many"),
    (lambda x: x.gather(1, np.zeros((2, 3), int)), ValueError, r"gather: index of shape \(2, 3\) does not fit"),
    (lambda x: x.gather(1, np.full((2, 3, 4), 3)), ValueError, r"gather: index values must be in \[0, 3\)"),
    (lambda x: F.pad(x, (1,)), TypeError, r"pad: pad must be a tuple of an even number of ints"),
    (lambda x: F.pad(x, (4, 0), mode="reflect"), ValueError, r"pad: reflect padding \(4, 0\) must be smaller"),
    (lambda x: F.pad(x, (1, 1), mode="circular"), ValueError, r"pad: mode must be 'constant', 'reflect' or"),
    (lambda x: tg.split(x, [1, 1], axis=1), ValueError, r"split: the sizes \[1, 1\] must be non-negative and add up to 3"),
    (lambda x: x.clamp(), ValueError, r"clamp: at least one of min and max must be given"),
    (lambda x: F.gelu(x, approximate="fast"), ValueError, r"gelu: approximate must be 'none' or 'tanh'"),
    (lambda x: F.leaky_relu(Tensor(np.arange(3))), TypeError, r"leaky_relu: x must be floating point, got dtype int64"),
    (lambda x: F.mse_loss(x, x.reshape(2, 12)), ValueError, r"mse_loss: input \(2, 3, 4\) and target \(2, 12\) must "
                                                            r"have the same shape"),
    (lambda x: F.conv1d(x, Tensor(np.zeros((2, 5, 3)))), ValueError, r"conv1d: the input has 3 channels"),
    (lambda x: F.conv1d(x.reshape(2, 3, 2, 2), Tensor(np.zeros((2, 3, 3)))), ValueError,
     r"conv1d: x must have 3 dimensions \(N, C, L\), got shape \(2, 3, 2, 2\)"),
    (lambda x: F.cross_entropy(Tensor(np.zeros((2, 3))), [0, 1], weight=np.ones(2)), ValueError,
     r"cross_entropy: weight must have shape \(3,\), one weight per class, got \(2,\)"),
    (lambda x: F.cross_entropy(Tensor(np.zeros((2, 3))), [0, 1], label_smoothing=2), ValueError,
     r"cross_entropy: label_smoothing must be a number in \[0, 1\], got 2"),
    (lambda x: F.cross_entropy(Tensor(np.zeros((2, 3))), [0, 7], ignore_index=5), ValueError,
     r"cross_entropy: target value 7 is outside \[0, 3\)"),
    (lambda x: F.max_pool1d(x, 2, padding=2), ValueError, r"max_pool1d: padding 2 must be at most half the kernel size 2"),
    (lambda x: F.avg_pool1d(x, 7), ValueError, r"avg_pool1d: the kernel of size 7 \(dilation 1\) spans 7, more than the "
                                               r"padded input's 4 \(input shape \(2, 3, 4\), padding 0\)"),
    (lambda x: F.conv1d(x, Tensor(np.zeros((2, 3, 3))), dilation=2), ValueError,
     r"conv1d: the kernel of size 3 \(dilation 2\) spans 5, more than the padded input's 4"),
    (lambda x: F.scaled_dot_product_attention(x, x.reshape(2, 4, 3), x), ValueError,
     r"scaled_dot_product_attention: query \(2, 3, 4\), key \(2, 4, 3\), value \(2, 3, 4\) do not fit"),
])
def test_errors_name_the_op_and_the_mistake(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(np.zeros((2, 3, 4))))


def test_cross_entropy_keeps_the_contracts_positional_reduction():
    logits, target = Tensor(rng.standard_normal((3, 4))), np.array([0, 3, 1])
    np.testing.assert_allclose(F.cross_entropy(logits, target, "sum").data,
                               F.cross_entropy(logits, target, reduction="sum").data)


def test_cross_entropy_with_every_row_ignored_is_nan_with_zero_gradient_as_pytorch():
    logits = Tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(logits, [-100, -100], label_smoothing=0.1)
    loss.backward()
    assert np.isnan(loss.item()) and logits.grad.data.tolist() == [[0.0] * 3] * 2
