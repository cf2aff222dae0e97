"""summary: run a model once on example inputs and list, in execution order, each layer's output
shape and parameter count.

A row (a "layer") is one op that computes something new (conv2d, max_pool2d, matmul, reshape,
...) together with the elementwise ops right after it in the same scope (the bias add, the
activation), as a Keras or PyTorch layer would be. Its name is the `tinygrad_edu.scope(...)` it
was made in, or the op's name outside any scope. Ops that only prepare a parameter (a bias
reshaped to (1, C, 1, 1), a weight transposed for a matmul) are listed in the layer that first
uses them, marked "(param)", and so are the parameters they read.

The shapes come from running the model, never from formulas, so the table cannot disagree with
what the model does.
"""
from __future__ import annotations

import collections

import numpy as np

from ..engine import Tensor, enable_grad
from ..engine import topological_order
from ..nn.models import is_buffer
from ..viz.dot import format_params, format_shape

__all__ = ["summary", "Summary", "SummaryRow"]

SummaryRow = collections.namedtuple("SummaryRow", "name ops output_shape params")
SummaryRow.__doc__ = """One line of the table: the layer's name (its scope, or the op's name), the ops in it,
the shape of its last op's output, and how many parameter values it holds."""


class Summary:
    """The result of summary(): `.rows` (SummaryRow, in execution order), `.total_params`,
    `.trainable_params`, `.n_ops`, `.output_shapes`; `str()` is the table."""

    def __init__(self, rows, total_params, trainable_params, n_param_tensors, n_ops, output_shapes,
                 buffers=(0, 0)):
        self.rows = rows
        self.buffers, self.n_buffer_tensors = buffers   # batch norm's running statistics: not parameters
        self.total_params = total_params
        self.trainable_params = trainable_params
        self.n_param_tensors = n_param_tensors
        self.n_ops = n_ops
        self.output_shapes = output_shapes

    @property
    def shapes(self):
        """The output shape of each row, e.g. ['10x1x28x28', '10x3x24x24', ...]."""
        return [format_shape(row.output_shape) for row in self.rows]

    def __str__(self):
        header = ("Layer", "Ops", "Output shape", "Params")
        cells = [(r.name, _shorten(r.ops, 60), format_shape(r.output_shape), f"{r.params:,}") for r in self.rows]
        widths = [max(len(line[i]) for line in [header] + cells) for i in range(4)]

        def line(values):
            return "  ".join(v.rjust(w) if i == 3 else v.ljust(w) for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        rule = "=" * len(line(header))
        frozen = self.total_params - self.trainable_params
        totals = [f"Total params: {self.total_params:,} in {self.n_param_tensors} tensors"
                  + (f" ({frozen:,} not requiring grad)" if frozen else "")
                  + (f"; buffers (running statistics, not parameters): {self.buffers:,} in "
                     f"{self.n_buffer_tensors} tensors" if self.n_buffer_tensors else ""),
                  f"Ops: {self.n_ops}   Output: {', '.join(format_shape(s) for s in self.output_shapes)}"]
        return "\n".join([rule, line(header), rule] + [line(c) for c in cells] + [rule] + totals)

    def __repr__(self):
        return f"<Summary: {len(self.rows)} rows, {self.total_params:,} params; print() it for the table>"


# ops that act value by value: after an unscoped conv2d or matmul they are part of its layer
ELEMENTWISE_OPS = {"add", "sub", "mul", "div", "pow", "maximum", "where", "neg", "exp", "log", "sqrt",
                   "tanh", "sigmoid", "relu", "abs", "astype", "softmax", "log_softmax"}


def _shorten(text, limit):
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _named_params(params):
    """{id(tensor): (name, tensor)} from a dict (nested dicts joined with '.'), a list or None."""
    found = {}
    stack = [("", params)] if params is not None else []
    while stack:
        prefix, value = stack.pop()
        if isinstance(value, Tensor):
            found.setdefault(id(value), (prefix or value.name or f"param{len(found)}", value))
        elif isinstance(value, dict):
            stack.extend((f"{prefix}.{k}" if prefix else str(k), v) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{prefix}.{i}" if prefix else "", v) for i, v in reversed(list(enumerate(value))))
    return found


def _as_input(value, i, count):
    """An example input as a Tensor that requires grad (when floating), so that every op that
    reads it is recorded, even one that no parameter touches."""
    if not isinstance(value, (Tensor, np.ndarray)):
        return value, None
    data = value.data if isinstance(value, Tensor) else value
    name = getattr(value, "name", None) or ("input" if count == 1 else f"input{i}")
    return Tensor(data, requires_grad=np.issubdtype(data.dtype, np.floating), name=name), name


def _outputs(result):
    if isinstance(result, Tensor):
        return [result]
    if isinstance(result, dict):
        result = list(result.values())
    if isinstance(result, (list, tuple)):
        return [r for r in result if isinstance(r, Tensor)]
    raise TypeError(f"summary: the function must return a Tensor (or a tuple/dict of them), got {type(result).__name__}")


def summary(fn, *example_inputs, params=None, print_table=True):
    """Run `fn` once and tabulate it: each layer (scope) or op in execution order, with its
    output shape and parameter count, then the totals.

    `fn(params, *example_inputs)` is called when `params` is given (the functional models of
    tinygrad_edu.models take their parameters first), else `fn(*example_inputs)`. `params`: a
    dict (possibly nested) or a list of Tensors; without it, the leaves that require grad are the
    parameters. Prints the table (print_table=False to skip) and returns a Summary, whose `.rows`
    hold the same numbers.

        >>> from tinygrad_edu import models
        >>> summary(models.forward, x, params=models.init_params(seed=0))   # doctest: +SKIP
    """
    prepared = [_as_input(v, i, len(example_inputs)) for i, v in enumerate(example_inputs)]
    inputs = [t for t, _ in prepared]
    with enable_grad():  # summary works inside no_grad() too: the graph is what it reads
        result = fn(params, *inputs) if params is not None else fn(*inputs)
    outputs = _outputs(result)
    named = _named_params(params)
    # batch norm's running statistics ride in the params dict but are state, not parameters
    buffers = {pid: t for pid, (name, t) in named.items() if is_buffer(name)}
    named = {pid: entry for pid, entry in named.items() if pid not in buffers}
    input_ids = {id(t) for t in inputs if isinstance(t, Tensor)}
    order = topological_order(outputs, grad_only=False)

    # which tensors carry data from the inputs (the rest only prepare parameters or constants)
    on_data_path = set(input_ids)
    for t in order:
        if not t.is_leaf and any(id(x) in on_data_path for x in t.inputs):
            on_data_path.add(id(t))

    # 1. layers: a run of data ops in one scope, or one data op outside any scope
    rows = []          # dicts: name, scope, main (the op that starts the row), shape, params
    row_of = {}        # id(tensor) -> index into rows
    for t, (tensor, name) in zip(inputs, prepared):
        if name is not None:
            row_of[id(t)] = len(rows)
            rows.append(dict(name=name, scope=None, main=None, shape=tensor.shape, params=0))
    for t in order:
        if t.is_leaf or id(t) not in on_data_path:
            continue
        last = rows[-1] if rows else None
        # a bias add or an activation right after a conv2d/matmul (in the same scope) is part of
        # that layer; any other op starts a row of its own
        joins_last = (last is not None and last["main"] is not None and last["scope"] == t.scope
                      and t.op.__name__ in ELEMENTWISE_OPS and t.shape == last["shape"])
        if not joins_last:
            rows.append(dict(name=t.scope or t.op.__name__, scope=t.scope, main=t, shape=t.shape, params=0))
        rows[-1]["shape"] = t.shape
        row_of[id(t)] = len(rows) - 1

    # 2. parameters, and the ops that only prepare them, go to the first layer that uses them
    consumers = collections.defaultdict(list)
    for t in order:
        for x in t.inputs:
            consumers[id(x)].append(t)
    param_ids = set(named) if params is not None else {
        id(t) for t in order if t.is_leaf and t.requires_grad and id(t) not in input_ids}
    for t in reversed(order):
        users = [row_of[id(c)] for c in consumers[id(t)] if id(c) in row_of]
        if id(t) in row_of or not users:
            continue
        row_of[id(t)] = min(users)
        if id(t) in param_ids:
            rows[row_of[id(t)]]["params"] += t.size

    # 3. what each row did, in execution order
    ops = collections.defaultdict(list)
    for t in order:
        if not t.is_leaf and id(t) in row_of:
            ops[row_of[id(t)]].append(t)

    def describe(i, row):
        if row["main"] is None:
            return ""                         # an input
        words = []
        for t in ops[i]:
            word = t.op.__name__
            if t is row["main"]:
                word = " ".join(filter(None, [word, format_params(t.params)]))
            elif id(t) not in on_data_path:
                word += "(param)"            # it only prepares a parameter, e.g. reshape(param)
            words.append(word)
        return ", ".join(words)

    all_params = {pid: t for pid, (_, t) in named.items()} if params is not None else \
        {id(t): t for t in order if id(t) in param_ids}
    total = sum(t.size for t in all_params.values())
    trainable = sum(t.size for t in all_params.values() if t.requires_grad)
    n_ops = sum(1 for t in order if not t.is_leaf)
    table = Summary([SummaryRow(row["name"], describe(i, row), tuple(row["shape"]), row["params"])
                     for i, row in enumerate(rows)],
                    total, trainable, len(all_params), n_ops, [o.shape for o in outputs],
                    buffers=(sum(t.size for t in buffers.values()), len(buffers)))
    if print_table:
        print(table)
    return table
