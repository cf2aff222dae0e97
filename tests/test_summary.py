"""summary: the seed model's listing, exactly, and the rules that make its rows."""
import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import models
from tinygrad_edu.teach.summary import SummaryRow

SEED_ROWS = [
    SummaryRow("input", "", (10, 1, 28, 28), 0),
    SummaryRow("conv1", "conv2d stride=1 pad=0, relu", (10, 3, 24, 24), 3 * 25 + 3),
    SummaryRow("conv1", "max_pool2d kernel=2 stride=2 pad=0", (10, 3, 12, 12), 0),
    SummaryRow("conv2", "conv2d stride=1 pad=0, relu", (10, 6, 8, 8), 6 * 3 * 25 + 6),
    SummaryRow("conv2", "max_pool2d kernel=2 stride=2 pad=0", (10, 6, 4, 4), 0),
    SummaryRow("reshape", "reshape shape=(10, -1)", (10, 96), 0),
    SummaryRow("fc1", "transpose(param), matmul, add, relu", (10, 80), 96 * 80 + 80),
    SummaryRow("fc2", "transpose(param), matmul, add", (10, 10), 80 * 10 + 10),
]


def images(n=10):
    return np.random.default_rng(0).random((n, 1, 28, 28), dtype=np.float32)


def test_seed_model_rows_exactly(capsys):
    params = models.init_params("seed", rng=0)
    table = tg.summary(models.forward, images(), params=params)
    assert table.rows == SEED_ROWS
    assert table.shapes == ["10x1x28x28", "10x3x24x24", "10x3x12x12", "10x6x8x8", "10x6x4x4", "10x96",
                            "10x80", "10x10"]
    assert table.total_params == table.trainable_params == 9104 == sum(p.size for p in params.values())
    assert table.n_param_tensors == 8 and table.n_ops == 14 and table.output_shapes == [(10, 10)]
    printed = capsys.readouterr().out
    assert printed.strip() == str(table).strip()
    lines = printed.splitlines()
    assert lines[1].split() == ["Layer", "Ops", "Output", "shape", "Params"]
    assert lines[4].split()[0] == "conv1" and lines[4].split()[-2:] == ["10x3x24x24", "78"]
    assert "Total params: 9,104 in 8 tensors" in printed


def test_a_closure_without_params_finds_the_parameters_itself(capsys):
    params = models.init_params("seed", rng=0)
    table = tg.summary(lambda x: models.forward(params, x), images(), print_table=False)
    assert capsys.readouterr().out == ""
    assert table.rows == SEED_ROWS and table.total_params == 9104


def test_loss_function_with_two_inputs_and_the_wide_model():
    params = models.init_params("wide", rng=0)
    table = tg.summary(models.loss_fn, images(4), np.arange(4), params=params, print_table=False)
    assert [r.name for r in table.rows] == ["input0", "input1", "conv1", "conv1", "conv2", "conv2", "reshape",
                                            "fc1", "fc2", "loss"]
    assert table.rows[1].output_shape == (4,) and table.rows[-1].output_shape == ()
    assert table.total_params == 80_202
    assert "scalar" in str(table)


def test_ops_on_the_input_alone_are_recorded_and_parameters_are_counted_where_first_used():
    W = tg.Tensor(np.ones((6, 2), np.float32), requires_grad=True, name="W")
    frozen = tg.Tensor(np.ones(2, np.float32), name="frozen")

    def fn(params, x):
        h = (x * 2.0).reshape(3, 6)      # no parameter involved: still a row
        return h @ params["W"] + params["frozen"]

    table = tg.summary(fn, np.ones((2, 9), np.float32), params={"W": W, "frozen": frozen}, print_table=False)
    assert [(r.name, r.output_shape, r.params) for r in table.rows] == [
        ("input", (2, 9), 0), ("mul", (2, 9), 0), ("reshape", (3, 6), 0), ("matmul", (3, 2), 14)]
    assert table.total_params == 14 and table.trainable_params == 12
    assert "(2 not requiring grad)" in str(table)


def test_summary_works_inside_no_grad_and_leaves_no_gradients():
    params = models.init_params("seed", rng=0)
    with tg.no_grad():
        table = tg.summary(models.forward, images(2), params=params, print_table=False)
    assert table.shapes[-1] == "2x10"
    assert all(p.grad is None for p in params.values())


def test_scoped_conv_with_padding_same_is_its_own_row():
    w1 = tg.Tensor(np.ones((2, 1, 3, 3), np.float32), requires_grad=True)
    w2 = tg.Tensor(np.ones((2, 2, 3, 3), np.float32), requires_grad=True)

    def fn(x):
        with tg.scope("block"):
            h = F.relu(F.conv2d(x, w1, padding="same"))
            return F.conv2d(h, w2 * 1.0, padding="same").relu()   # the shape is kept: still a new layer

    table = tg.summary(fn, np.ones((1, 1, 5, 5), np.float32), print_table=False)
    assert [(r.name, r.output_shape) for r in table.rows] == [
        ("input", (1, 1, 5, 5)), ("block", (1, 2, 5, 5)), ("block", (1, 2, 5, 5))]
    assert table.rows[2].ops == "mul(param), conv2d stride=1 pad=1, relu"
    assert [r.params for r in table.rows] == [0, 18, 36]


def test_a_function_must_return_tensors():
    with pytest.raises(TypeError, match="must return a Tensor"):
        tg.summary(lambda x: 3, np.ones(2, np.float32), print_table=False)


def test_the_bn_models_running_statistics_are_buffers_not_parameters():
    params = models.init_params("bn", rng=0)
    table = tg.summary(models.forward, np.zeros((2, 1, 28, 28), np.float32), params=params, print_table=False)
    # the models' docstring, torch_module("bn").parameters() and metrics.json all say 52,162
    assert table.total_params == table.trainable_params == sum(r.params for r in table.rows) == 52162
    assert (table.buffers, table.n_buffer_tensors) == (2 * (8 + 16), 4)
    assert str(table).splitlines()[-2] == ("Total params: 52,162 in 10 tensors; buffers (running statistics, "
                                           "not parameters): 48 in 4 tensors")
    assert [r.params for r in table.rows if r.name in ("bn1", "bn2")] == [16, 32]   # weight and bias only
