"""draw_graph: the recorded computation graph as a graphviz.Digraph, forward or backward.

Two views of the same record (each result Tensor knows its op, its inputs, the op's parameters
and the scope it was made in):

- **forward**: a node per op (its name and parameters, the output's shape and dtype) and per leaf
  (a parameter, an input or a constant); each edge carries the shape of the tensor flowing along
  it. A tensor used in several places is one node with several out-edges.
- **backward** (`backward=True`): the graph that `backward()` walks. It starts from the seed
  gradient (ones, the output's shape); each node is one VJP application and names its rule (e.g.
  `conv2d d/dx: full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))`); a tensor that
  receives gradients from several uses gets an accumulate (+) node; each parameter ends in a
  `.grad` node. Every edge carries the shape of the gradient on it, which is always the shape of
  the tensor the gradient is for.

Drawing is done in three steps, so that the same folding serves both views:
  1. describe the graph as plain nodes (kind, label lines, scope) and edges (source, target, label);
  2. if there are more than `max_nodes` nodes, fold: collapse scopes into one box each, deepest
     scopes first, and if that is not enough, keep the nodes nearest the output and fold the rest
     into one node; a note under the graph says how many nodes were folded;
  3. write the DOT: scopes become nested clusters, plus a legend of the colours.
Every walk over the graph is a loop with an explicit stack or queue, never recursion, so a
100,000-op chain draws as well as a 10-op one.
"""
from __future__ import annotations

import collections
import html
import linecache

import graphviz
import numpy as np

from .engine import Tensor, topological_order

__all__ = ["draw_graph", "GraphvizNotFoundError"]

DEFAULT_MAX_NODES = 200

INSTALL_GRAPHVIZ = (
    "draw_graph could not run the Graphviz program `dot` (it is not on PATH). The graph itself "
    "is fine (its DOT text is `graph.source`); only rendering to SVG/PNG needs Graphviz. Install "
    "it with `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
    "`conda install -c conda-forge graphviz`, or from https://graphviz.org/download/ (Windows: "
    "add its bin folder to PATH)")


class GraphvizNotFoundError(graphviz.ExecutableNotFound):
    """Rendering needs the Graphviz binaries; the message says how to install them.

    A subclass of graphviz.ExecutableNotFound, so code that already catches that keeps working."""

    def __init__(self, message=INSTALL_GRAPHVIZ):
        RuntimeError.__init__(self, message)  # ExecutableNotFound's own __init__ formats its own text


class Graph(graphviz.Digraph):
    """The graphviz.Digraph that draw_graph returns.

    It is a plain Digraph (Jupyter shows it inline through Digraph's own `_repr_mimebundle_`, and
    `.source`, `.render()`, `.pipe()` work as usual) whose rendering methods turn a missing `dot`
    binary into an error that says how to install Graphviz."""

    def pipe(self, *args, **kwargs):
        with _explain_missing_graphviz():
            return super().pipe(*args, **kwargs)

    def render(self, *args, **kwargs):
        with _explain_missing_graphviz():
            return super().render(*args, **kwargs)

    def unflatten(self, *args, **kwargs):
        with _explain_missing_graphviz():
            return super().unflatten(*args, **kwargs)


class _explain_missing_graphviz:
    """Re-raise graphviz.ExecutableNotFound as GraphvizNotFoundError (with install instructions)."""

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and issubclass(exc_type, graphviz.ExecutableNotFound) \
                and not issubclass(exc_type, GraphvizNotFoundError):
            raise GraphvizNotFoundError(f"{INSTALL_GRAPHVIZ}. (graphviz said: {exc})") from exc
        return False


# --------------------------------------------------------------------------------------------
# Text: shapes, parameters, values
# --------------------------------------------------------------------------------------------
def format_shape(shape):
    """(10, 3, 24, 24) -> '10x3x24x24': the short form, for edges and the summary's table."""
    return "x".join(str(n) for n in shape) if len(shape) else "scalar"


def _tuple(shape):
    """(10, 3, 24, 24) as Python prints a tensor's .shape: the form in node labels."""
    return str(tuple(int(n) for n in shape))


# conv/pool parameters are pairs; a pair of equal numbers reads better as one (stride=1, not (1, 1))
_PAIR_PARAMS = {"stride", "padding", "dilation", "kernel_size", "output_padding"}
_UNREMARKABLE = {"dilation": 1, "groups": 1, "output_padding": 0}
_SHORT_PARAM_NAMES = {"padding": "pad", "kernel_size": "kernel", "output_padding": "out_pad"}


def format_params(params):
    """An op's keyword parameters as `key=value` words, e.g. 'stride=1 pad=0'."""
    words = []
    for key, value in params.items():
        if value is None or value is False:  # an unused option (axis=None, keepdims=False) is noise
            continue
        if key in _UNREMARKABLE and set(np.ravel(value)) == {_UNREMARKABLE[key]}:
            continue                         # dilation=1, groups=1: the plain case says nothing
        if key in _PAIR_PARAMS:
            value = _collapse_equal(value)
        words.append(f"{_SHORT_PARAM_NAMES.get(key, key)}={_format_value(value)}")
    return " ".join(words)


def _collapse_equal(value):
    """(1, 1) -> 1 and ((0, 0), (0, 0)) -> 0; (2, 1) stays."""
    flat = np.ravel(np.asarray(value, dtype=object))
    return flat[0] if len(flat) and all(v == flat[0] for v in flat) else value


def _format_value(value, limit=40):
    if isinstance(value, np.ndarray):
        text = f"{'mask' if value.dtype == bool else 'array'}{format_shape(value.shape)}"
    elif isinstance(value, slice):
        text = ":".join("" if v is None else str(v) for v in (value.start, value.stop, value.step)).rstrip(":") or ":"
    elif isinstance(value, tuple):
        text = "(" + ", ".join(_format_value(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    elif isinstance(value, np.dtype) or isinstance(value, type):
        text = np.dtype(value).name
    elif value is Ellipsis:
        text = "..."
    else:
        text = str(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _format_values(data):
    """A tensor's values in a few characters: all of them when tiny, else min/mean/max."""
    if data.size <= 6:
        return "values " + np.array2string(np.asarray(data).ravel(), precision=4, separator=", ")
    if not np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.complexfloating):
        return f"values {data.dtype.name}"
    return f"min {data.min():.4g}  mean {data.mean():.4g}  max {data.max():.4g}"


def _grad_line(t):
    g = t.grad
    if g is None:
        return None
    return f"grad {_tuple(g.shape)}  |g|={float(np.linalg.norm(np.asarray(g.data, np.float64))):.4g}"


# --------------------------------------------------------------------------------------------
# VJP rules, as text for the backward view
# --------------------------------------------------------------------------------------------
def _conv2d_rule(i, t):
    """conv2d's VJPs (inputs x and W); the second line is the recipe with this op's own numbers."""
    x, w = t.inputs[0], t.inputs[1]
    stride, dilation = _pair(t.params.get("stride", 1)), _pair(t.params.get("dilation", 1))
    padding = _pad_pairs(t.params.get("padding", 0))
    groups = t.params.get("groups", 1)
    if i == 0:
        steps = []
        if stride != (1, 1):
            steps.append(f"dilate g by {_same_or_pair(tuple(s - 1 for s in stride))}")
        # pad g by the full padding d(k-1) minus the forward padding; rows the forward pass never
        # read (the remainder of the stride) get extra zeros at the bottom/right
        pads = []
        for axis in (0, 1):
            k, (before, after) = w.shape[2 + axis], padding[axis]
            full = dilation[axis] * (k - 1)
            unread = (x.shape[2 + axis] + before + after - full - 1) % stride[axis]
            pads.append((full - before, full - after + unread))
        flat = [a for pair in pads for a in pair]
        steps.append(("pad g by " + str(flat[0]) if len(set(flat)) == 1 else f"pad g by {tuple(pads)}")
                     + (" (negative: crop)" if min(flat) < 0 else ""))
        swapped = (w.shape[1] * groups, w.shape[0] // groups) + w.shape[2:]
        steps.append(f"flip(W^T) {_tuple(swapped)}" + (f", groups={groups}" if groups > 1 else ""))
        return ["full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))", "; ".join(steps)]
    return ["corr(x, g) over swapped (N, C) axes, stride -> dilation",
            f"x as {_tuple((x.shape[1], x.shape[0]) + x.shape[2:])}, g as kernel -> {_tuple(w.shape)}"]


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _pad_pairs(padding):
    """conv2d's padding in any spelling -> ((top, bottom), (left, right))."""
    rows, cols = _pair(padding)
    return _pair(rows), _pair(cols)


def _same_or_pair(values):
    return str(values[0]) if len(set(values)) == 1 else str(values)


# Keyed by op name. A value is a tuple of texts, one per positional input (the last repeats for
# ops with any number of inputs), or a function (input index, result tensor) -> text or lines.
# An op not listed here (a user's own primitive) shows its VJP's source text instead.
VJP_RULES = {
    "add": ("g", "g"),
    "sub": ("g", "-g"),
    "mul": ("g * y", "g * x"),
    "div": ("g / y", "-g * ans / y"),
    "pow": ("g * y * x**(y-1)", "g * ans * log(x)"),
    "maximum": ("g where x > y (ties: half)", "g where y > x (ties: half)"),
    "where": ("(none: a condition)", "where(cond, g, 0)", "where(cond, 0, g)"),
    "neg": ("-g",),
    "exp": ("g * ans",),
    "log": ("g / x",),
    "sqrt": ("g / (2 * ans)",),
    "tanh": ("g * (1 - ans^2)",),
    "sigmoid": ("g * ans * (1 - ans)",),
    "relu": ("g * (ans > 0)",),
    "abs": ("g * sign(x)",),
    "astype": ("cast g back to x's dtype",),
    "sum": ("broadcast g back to x's shape",),
    "mean": ("broadcast g back to x's shape, / count",),
    "max": ("g to the maxima (ties share equally)",),
    "reshape": ("reshape g to x's shape",),
    "transpose": ("transpose g back (inverse axes)",),
    "broadcast_to": ("sum g back to x's shape",),
    "sum_to": ("broadcast g back to x's shape",),
    "getitem": ("scatter-add g into zeros at index",),
    "index_add": ("gather g at index",),
    "concatenate": lambda i, t: f"slice {i} of g",
    "stack": lambda i, t: f"g[{i}] along the stacked axis",
    "matmul": ("g @ y^T", "x^T @ g"),
    "conv2d": _conv2d_rule,
    # conv2d's own VJPs are ops too; they show up when a gradient is differentiated again
    "conv_transpose2d": ("conv2d(g, W): the adjoint of the transposed conv",
                         "weight-gradient of conv2d: corr(g, g_in)"),
    "conv2d_weight_grad": ("conv_transpose2d(g_in, V): conv2d's input-gradient with kernel V",
                           "conv2d(x, V)"),
    "max_pool2d": ("route g to each window's first max (overlaps add)",),
    "max_pool2d_scatter": ("gather g at each window's max", "(none: positions)"),
    "max_pool2d_gather": ("scatter g to each window's max", "(none: positions)"),
    "avg_pool2d": ("spread g / (kH*kW) over each window",),
    "avg_pool2d_transpose": ("avg_pool2d(g)",),
    "softmax": ("ans * (g - sum(g * ans))",),
    "log_softmax": ("g - softmax(x) * sum(g)",),
    "cross_entropy": ("(softmax(logits) - onehot(target)) * g / N", "(none: class indices)"),
}

# elementwise ops broadcast their inputs; the engine sums each gradient back to its input's shape
_BROADCASTING_OPS = {"add", "sub", "mul", "div", "pow", "maximum", "where"}


def _vjp_rule_lines(t, i):
    """What the VJP of t's op does for input i: ['conv2d d/dx: ...', optional detail lines]."""
    prim, x = t.op, t.inputs[i]
    name = prim.__name__
    rule = VJP_RULES.get(name)
    if rule is None:
        lines = [_source_of(prim.vjps[i])]
    elif callable(rule):
        lines = rule(i, t)
    else:
        lines = rule[min(i, len(rule) - 1)]
    lines = [lines] if isinstance(lines, str) else list(lines)
    lines[0] = f"{name} d/d{_input_name(prim, i)}: {lines[0]}"
    if name in _BROADCASTING_OPS and x.shape != t.shape:
        lines.append(f"then sum to {_tuple(x.shape)} (undo broadcast)")
    return lines


_names_cache = {}


def _input_name(prim, i):
    """The name the VJPs give input i (their parameters are g, ans, *inputs), e.g. 'x', 'weight'."""
    code = getattr(_vjp_function(prim, i), "__code__", None)
    if code is None or not hasattr(prim.vjps, "__len__") or len(prim.vjps) > 1000:
        return f"x{i}"  # an op with any number of inputs (concatenate): number them
    n_named = code.co_argcount
    names = code.co_varnames[2:n_named]
    return names[i] if i < len(names) else f"x{i}"


def _vjp_function(prim, i):
    vjps = prim.vjps
    try:
        vjp = vjps[i]
    except (IndexError, TypeError):
        return None
    return getattr(vjp, "func", vjp)  # functools.partial (defvjp_argnum) -> the function


_source_cache = {}


def _source_of(vjp):
    """A user-defined VJP as text: a lambda's body as written ('g * 3 * x * x'), else its name."""
    fn = getattr(vjp, "func", vjp)
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__name__", "user-defined VJP")
    if code in _source_cache:
        return _source_cache[code]
    text = f"{fn.__name__}(g, ans, ...)"
    if fn.__name__ == "<lambda>":
        text = _lambda_body(code) or "user-defined VJP (a lambda)"
    _source_cache[code] = text
    return text


def _lambda_body(code):
    """The source text of a lambda's body, found from its instructions' source positions."""
    spans = [(a, c, b, d) for a, b, c, d in code.co_positions()
             if a is not None and c is not None and (a, b, c, d) != (code.co_firstlineno,) * 2 + (0, 0)]
    if not spans:
        return None
    start, end = min((s[0], s[1]) for s in spans), max((s[2], s[3]) for s in spans)
    lines = [linecache.getline(code.co_filename, n).encode() for n in range(start[0], end[0] + 1)]
    if not all(lines):
        return None
    if len(lines) == 1:
        lines[0] = lines[0][start[1]:end[1]]
    else:
        lines[0], lines[-1] = lines[0][start[1]:], lines[-1][:end[1]]
    text = " ".join(b"".join(lines).decode(errors="replace").split())
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------------------------
# Step 1: the graph as plain nodes and edges
# --------------------------------------------------------------------------------------------
class _Node:
    """One box of the drawing. `main`: it lies on the path the data takes (input to output, or
    the gradient's way back to the input), which the layout keeps straight."""
    __slots__ = ("kind", "lines", "scope", "tooltip", "main")

    def __init__(self, kind, lines, scope=None, tooltip=None, main=False):
        self.kind, self.lines, self.scope, self.tooltip, self.main = kind, lines, scope, tooltip, main


def _data_path(order):
    """The tensors computed from the data (a leaf that neither requires grad nor is a scalar
    constant), as opposed to the ones that only prepare a parameter (a reshaped bias)."""
    data = set()
    for t in order:
        if (t.is_leaf and not t.requires_grad and t.size > 1) or any(id(x) in data for x in t.inputs):
            data.add(id(t))
    return data


def _leaf_scopes(order):
    """A parameter (or a scalar constant) is drawn inside the scope of the ops that use it, when
    they all share one: conv1's weight sits in the conv1 box. Data inputs stay outside."""
    users = collections.defaultdict(set)
    for t in order:
        for x in t.inputs:
            if x.is_leaf and (x.requires_grad or x.size == 1):
                users[id(x)].add(t.scope)
    return {key: scopes.pop() for key, scopes in users.items() if len(scopes) == 1}


def _leaf_title(t):
    if t.name:
        return t.name
    if t.requires_grad:
        return "param"
    if t.size == 1 and np.issubdtype(t.dtype, np.number):
        return f"const {t.data.item():.4g}"
    return "input"


def _tensor_lines(t, show_values):
    lines = [f"{_tuple(t.shape)} {t.dtype.name}"]
    grad_line = _grad_line(t)
    if grad_line:
        lines.append(grad_line)
    if show_values:
        lines.append(_format_values(t.data))
    return lines


def _forward_description(roots, show_values):
    order = topological_order(roots, grad_only=False)
    index = {id(t): i for i, t in enumerate(order)}
    root_ids = {id(r) for r in roots}
    leaf_scope = _leaf_scopes(order)
    data = _data_path(order)
    nodes, edges = [], []
    n_ops = 0
    for t in order:
        is_root = id(t) in root_ids
        if t.is_leaf:
            kind = "output" if is_root else "param" if t.requires_grad else "input"
            lines = [_leaf_title(t)] + _tensor_lines(t, show_values)
            nodes.append(_Node(kind, lines, leaf_scope.get(id(t))))
            continue
        n_ops += 1
        head = " ".join(filter(None, [t.op.__name__, format_params(t.params)]))
        if t.name:
            head = f"{t.name} = {head}"
        nodes.append(_Node("output" if is_root else "op", [head] + _tensor_lines(t, show_values),
                           t.scope, tooltip=t.scope or None, main=id(t) in data))
        for x in t.inputs:
            edges.append((index[id(x)], index[id(t)], format_shape(x.shape)))
    caption = f"forward graph: {n_ops} ops, {len(order) - n_ops} leaves"
    return nodes, edges, [index[id(r)] for r in roots], caption


def _backward_description(roots):
    for r in roots:
        if not r.requires_grad:
            raise ValueError("draw_graph(backward=True): the output does not require grad, so "
                             "backward has nothing to walk (no input of its ops has requires_grad=True)")
    order = topological_order(roots)
    leaf_scope = _leaf_scopes(order)
    data = _data_path(topological_order(roots, grad_only=False))
    nodes, edges = [], []
    sources = collections.defaultdict(list)  # id(tensor) -> nodes that send it a gradient

    def add(node):
        nodes.append(node)
        return len(nodes) - 1

    for r in roots:
        title = "seed: d{0}/d{0} = 1".format(r.name) if r.name and r.size == 1 else \
            ("seed: dL/dL = 1" if r.size == 1 else "seed gradient (ones)")
        sources[id(r)].append(add(_Node("seed", [title, _tuple(r.shape)], main=True)))
    seeds = list(range(len(nodes)))
    n_vjps = 0
    for t in reversed(order):                      # outputs first, as backward runs
        senders = sources.pop(id(t), None)
        if not senders:
            continue                              # cut off: every path here has a VJP of None
        scope = t.scope if not t.is_leaf else leaf_scope.get(id(t))
        shape = format_shape(t.shape)
        if len(senders) > 1:                      # used in several places: the gradients add up
            total = add(_Node("accumulate", ["+", f"{len(senders)} grads", _tuple(t.shape)], scope,
                              main=id(t) in data))
            edges.extend((s, total, shape) for s in senders)
            senders = [total]
        (sender,) = senders
        if t.is_leaf:
            lines = [f"{t.name or 'param'}.grad", f"{_tuple(t.shape)} {t.dtype.name}"]
            if t.grad is not None:  # drawn after a backward: how big the gradient came out
                lines.append(f"|g|={float(np.linalg.norm(np.asarray(t.grad.data, np.float64))):.4g}")
            edges.append((sender, add(_Node("grad", lines, scope)), shape))
            continue
        vjps = t.op.vjps
        for i, x in enumerate(t.inputs):
            if not x.requires_grad or i >= len(vjps) or vjps[i] is None:
                continue
            n_vjps += 1
            vjp = add(_Node("vjp", _vjp_rule_lines(t, i), scope, tooltip=t.scope or None, main=id(x) in data))
            edges.append((sender, vjp, shape))
            sources[id(x)].append(vjp)
    caption = f"backward graph: {n_vjps} VJPs (edges carry gradient shapes)"
    return nodes, edges, seeds, caption


# --------------------------------------------------------------------------------------------
# Step 2: folding, when there are more than max_nodes nodes
# --------------------------------------------------------------------------------------------
def _scope_prefix(scope, depth):
    return "/".join(scope.split("/")[:depth])


def _fold(nodes, edges, roots, max_nodes, backward):
    """Map each node to what is drawn for it: itself (its index), a collapsed scope (a string
    key) or the one 'folded' node. Returns (group_of, group_info, note)."""
    n = len(nodes)
    neighbours = [[] for _ in range(n)]
    for s, d, _ in edges:
        neighbours[s].append(d)
        neighbours[d].append(s)
    depths = [len(node.scope.split("/")) if node.scope else 0 for node in nodes]
    group_of = list(range(n))
    level = None
    for depth in range(max(depths, default=0), 0, -1):       # deepest scopes first
        level = depth
        group_of = [_scope_prefix(node.scope, depth) if depths[i] >= depth else i
                    for i, node in enumerate(nodes)]
        # an unscoped leaf whose users all fold into one scope box folds in with them
        for i in range(n):
            if depths[i] == 0 and nodes[i].kind in ("param", "input", "grad") and neighbours[i]:
                targets = {group_of[j] for j in neighbours[i]}
                if len(targets) == 1 and isinstance(next(iter(targets)), str):
                    group_of[i] = targets.pop()
        if len(set(group_of)) <= max_nodes:
            break
    notes = []
    folded = sum(1 for i, g in enumerate(group_of) if g != i)
    if level is not None and folded:
        boxes = len({g for g in group_of if isinstance(g, str)})
        notes.append(f"{folded} of {n} nodes folded into {boxes} scope boxes (scopes of depth {level} "
                     f"and deeper collapsed; max_nodes={max_nodes})")
    groups = list(dict.fromkeys(group_of))                   # distinct, in order
    if len(groups) > max_nodes:
        # still too many: keep the groups nearest the output, fold the rest. "Nearest" follows the
        # flow back from the output (breadth-first), not any edge: a constant shared by every layer
        # must not pull in nodes from all over the graph.
        upstream = collections.defaultdict(dict)  # group -> the groups it is computed from
        for s, d, _ in edges:
            if group_of[s] != group_of[d]:
                near, far = (group_of[s], group_of[d]) if backward else (group_of[d], group_of[s])
                upstream[near][far] = True
        keep, queue = {}, collections.deque(dict.fromkeys(group_of[r] for r in roots))
        while queue and len(keep) < max_nodes - 1:
            g = queue.popleft()
            if g in keep:
                continue
            keep[g] = True
            queue.extend(h for h in upstream[g] if h not in keep)
        hidden = [i for i in range(n) if group_of[i] not in keep]
        for i in hidden:
            group_of[i] = "..."
        notes.append(f"{len(hidden)} of {n} nodes, the farthest from the output, folded into one node")
    return group_of, notes


def _apply_folding(nodes, edges, group_of):
    """The nodes and edges that are drawn once nodes are replaced by their groups."""
    members = collections.defaultdict(list)
    for i, g in enumerate(group_of):
        members[g].append(i)
    drawn, position = [], {}
    for g, idx in members.items():
        position[g] = len(drawn)
        if not isinstance(g, str):
            drawn.append(nodes[g])
        elif g == "...":
            drawn.append(_Node("folded", [f"... {len(idx)} nodes folded", "(raise max_nodes to see them)"]))
        else:
            kinds = collections.Counter(nodes[i].kind for i in idx)
            detail = ", ".join(f"{c} {k}{'s' if c > 1 else ''}" for k, c in kinds.items())
            parent = g.rsplit("/", 1)[0] if "/" in g else None
            drawn.append(_Node("scope", [g.rsplit("/", 1)[-1], f"{len(idx)} nodes folded", detail], parent,
                               tooltip=g))
    merged = {}  # (source, target) -> labels, so parallel edges between two boxes become one
    for s, d, label in edges:
        gs, gd = position[group_of[s]], position[group_of[d]]
        if gs != gd:
            labels = merged.setdefault((gs, gd), [])
            if label not in labels:
                labels.append(label)
    folded_edges = [(s, d, ", ".join(ls[:2]) + (", ..." if len(ls) > 2 else "")) for (s, d), ls in merged.items()]
    return drawn, folded_edges


# --------------------------------------------------------------------------------------------
# Step 3: DOT
# --------------------------------------------------------------------------------------------
_STYLES = {  # kind -> (legend text, node attributes)
    "param": ("parameter (leaf, requires grad)", dict(shape="ellipse", fillcolor="#cfe2f3")),
    "input": ("input / constant (leaf)", dict(shape="ellipse", fillcolor="#eeeeee")),
    "op": ("op (and its result)", dict(shape="box", fillcolor="#fff2cc")),
    "output": ("output", dict(shape="box", fillcolor="#d9ead3", penwidth="2")),
    "seed": ("seed gradient (ones)", dict(shape="ellipse", fillcolor="#d9ead3", penwidth="2")),
    "vjp": ("VJP rule applied", dict(shape="box", fillcolor="#f4cccc")),
    "accumulate": ("+ gradients added up", dict(shape="ellipse", fillcolor="#fce5cd")),
    "grad": ("parameter's .grad", dict(shape="ellipse", fillcolor="#cfe2f3")),
    "scope": ("collapsed scope", dict(shape="box3d", fillcolor="#ead1dc")),
    "folded": ("folded nodes", dict(shape="box", fillcolor="#ffffff", style="dashed")),
}
_LEGEND = {False: ("param", "input", "op", "output"), True: ("seed", "vjp", "accumulate", "grad")}


def _dot_label(lines):
    """Lines joined with DOT's line break. graphviz.nohtml: a label such as '<lambda>' must stay
    text, not become an HTML label."""
    return graphviz.nohtml("\\n".join(line.replace("\\", "\\\\") for line in lines))


def _emit(nodes, edges, captions, rankdir, legend, backward):
    kinds = _LEGEND[backward] + tuple(k for k in ("scope", "folded") if any(n.kind == k for n in nodes))
    graph = Graph(name="backward" if backward else "forward",
                  # newrank: rank the whole graph at once, so the invisible edges that stack
                  # scope boxes (_stack_scope_boxes) hold across boxes too
                  graph_attr=dict(rankdir=rankdir, label=_caption(captions, kinds if legend else ()),
                                  labelloc="b", newrank="true", fontname="Helvetica", fontsize="10"),
                  node_attr=dict(style="filled", fontname="Helvetica", fontsize="10"),
                  edge_attr=dict(fontname="Helvetica", fontsize="9"))
    # one subgraph per scope path (and each of its parents), filled bottom-up and then nested
    clusters = {}
    for node in nodes:
        scope = node.scope
        while scope and scope not in clusters:
            clusters[scope] = graphviz.Digraph(name=f"cluster_{len(clusters)}", graph_attr=dict(
                label=scope.rsplit("/", 1)[-1], tooltip=scope, style="rounded,dashed", color="#888888",
                fontname="Helvetica", fontsize="10"))
            scope = scope.rsplit("/", 1)[0] if "/" in scope else None
    for i, node in enumerate(nodes):
        target = clusters[node.scope] if node.scope else graph
        attributes = dict(_STYLES[node.kind][1])
        if node.tooltip:
            attributes["tooltip"] = node.tooltip
        if node.main:
            attributes["group"] = "main"   # Graphviz keeps the edges within a group straight
        target.node(f"n{i}", _dot_label(node.lines), **attributes)
    for scope in sorted(clusters, key=lambda s: -s.count("/")):  # innermost first
        parent = clusters[scope.rsplit("/", 1)[0]] if "/" in scope else graph
        parent.subgraph(clusters[scope])
    for s, d, label in edges:
        # the data's path pulls harder than the side branches to and from the parameters, so
        # Graphviz keeps it straight instead of drifting sideways layer by layer
        main = nodes[s].main and nodes[d].main
        graph.edge(f"n{s}", f"n{d}", label=graphviz.nohtml(label), weight="10" if main else "1")
    _stack_scope_boxes(graph, nodes, edges)
    graph.captions = captions
    return graph


def _stack_scope_boxes(graph, nodes, edges):
    """Where the data's path leaves one scope box for the next, rank the next box's entry below
    everything in the box it leaves (invisible edges). Boxes may not overlap, so without this a
    box whose side branch (a parameter's gradient) runs deeper than its exit is pushed beside
    the next one, and the layers drift into a wide staircase."""
    members = collections.defaultdict(set)
    for i, node in enumerate(nodes):
        scope = node.scope
        while scope:                                    # a node belongs to every enclosing box
            members[scope].add(i)
            scope = scope.rsplit("/", 1)[0] if "/" in scope else None
    has_next, has_previous = collections.defaultdict(set), collections.defaultdict(set)
    for s, d, _ in edges:                               # per box: nodes with an edge inside the box
        scope = nodes[s].scope
        while scope:
            if d in members[scope]:
                has_next[scope].add(s)
                has_previous[scope].add(d)
            scope = scope.rsplit("/", 1)[0] if "/" in scope else None
    done = set()
    for s, d, _ in edges:
        left, entered = nodes[s].scope, nodes[d].scope
        if not (nodes[s].main and nodes[d].main and left and left != entered) or (left, entered) in done:
            continue
        if entered and (entered.startswith(left + "/") or left.startswith(entered + "/")):
            continue                                    # into a box inside this one, or out to its parent
        done.add((left, entered))
        # every node of a box reaches one of the box's last nodes and is reached from one of its
        # first, so edges from those last nodes to those first ones (a handful) order the boxes
        lasts = sorted(members[left] - has_next[left])
        firsts = sorted(members[entered] - has_previous[entered]) if entered else [d]
        for i in lasts:
            for j in firsts:
                if (i, j) != (s, d):
                    graph.edge(f"n{i}", f"n{j}", style="invis")


def _caption(captions, kinds):
    """The text under the graph, with the legend as a row of coloured cells. An HTML-like label
    rather than legend nodes: the graph's nodes stay exactly its ops and tensors."""
    if not kinds:
        return "\n".join(captions)
    cells = "".join(f'<td bgcolor="{_STYLES[k][1]["fillcolor"]}" border="1">{html.escape(_STYLES[k][0])}</td>'
                    for k in kinds)
    rows = "".join(f'<tr><td colspan="{len(kinds)}">{html.escape(c)}</td></tr>' for c in captions)
    return f'<<table border="0" cellspacing="4" cellpadding="4"><tr>{cells}</tr>{rows}</table>>'


# --------------------------------------------------------------------------------------------
# The public function
# --------------------------------------------------------------------------------------------
def draw_graph(root, *, backward=False, show_values=False, rankdir="TB", max_nodes=DEFAULT_MAX_NODES,
               legend=True):
    """Draw the graph that made `root` (a Tensor, or a list of Tensors) as a graphviz.Digraph.

    Forward view: a node per op (name, parameters, output shape and dtype) and per leaf (name,
    shape, dtype; after backward the gradient's shape and norm); edges carry shapes; parameters,
    inputs/constants, ops and the output have their own colours (the legend under the graph). A tensor used
    several times is drawn once. Ops made inside `tinygrad_edu.scope("name")` are boxed together.

    backward=True: the graph backpropagation walks, one node per VJP naming its rule, with the
    gradient shapes on the edges.

    show_values: (forward view) add each tensor's values: all of them when tiny, else min/mean/max.
    rankdir: Graphviz's layout direction, "TB" (top to bottom) or "LR" (left to right).
    max_nodes: above this many nodes, scopes collapse into single boxes (deepest first) and, if
    that is not enough, the nodes farthest from the output fold into one; a note says how many
    were folded. None draws everything. legend=False leaves the legend out.

    Node labels write shapes as Python prints them, (10, 3, 24, 24); edges use the short form
    10x3x24x24. After drawing, `graph.captions` holds the caption lines (counts, folding notes).

    The result is a plain graphviz.Digraph: `.source` is the DOT text, `.render(...)`/`.pipe(...)`
    need the Graphviz program `dot`, and Jupyter displays it inline.
    """
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"draw_graph: expected a Tensor (or a list of them), got {type(r).__name__}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if backward:
        nodes, edges, root_nodes, caption = _backward_description(roots)
    else:
        nodes, edges, root_nodes, caption = _forward_description(roots, show_values)
    captions = [caption]
    if max_nodes is not None and len(nodes) > max_nodes:
        if max_nodes < 2:
            raise ValueError(f"draw_graph: max_nodes must be at least 2 (or None), got {max_nodes}")
        group_of, notes = _fold(nodes, edges, root_nodes, max_nodes, backward)
        nodes, edges = _apply_folding(nodes, edges, group_of)
        captions += notes
    return _emit(nodes, edges, captions, rankdir, legend, backward)


# --------------------------------------------------------------------------------------------
# The command line: tinygrad-edu graph --model seed --out graph.svg
# --------------------------------------------------------------------------------------------
def example_batch(model="seed", batch=10):
    """(params, images, labels) for drawing or summarising one of tinygrad_edu.models: fresh
    parameters (seed 0) and the first `batch` digits of the bundled MNIST test set."""
    from . import datasets, models
    params = models.init_params(model, rng=0)
    _, _, x_test, y_test = datasets.load_mnist()
    if not 1 <= batch <= len(x_test):
        raise ValueError(f"--batch must be between 1 and {len(x_test)}, got {batch}")
    return params, Tensor(x_test[:batch], name="images"), y_test[:batch]


def add_graph_command(subparsers):
    """Register `tinygrad-edu graph` with the command line's argparse subparsers."""
    from . import models

    parser = subparsers.add_parser(
        "graph", help="draw a model's computation graph (forward, or --backward) as SVG/PNG/PDF/DOT",
        description="Run one batch of MNIST digits through a model, backpropagate its loss, and draw the "
                    "graph: every op with its output shape, or with --backward every VJP rule with the "
                    "gradient's shape. The format follows --out's suffix (.svg .png .pdf need Graphviz's "
                    "`dot`; .dot/.gv write the DOT text).",
        epilog="example: tinygrad-edu graph --model seed --out graph.svg")
    parser.add_argument("--model", default="seed", choices=list(models.ARCHITECTURES),
                        help="which of tinygrad_edu.models (default seed)")
    parser.add_argument("--out", default="graph.svg", help="the file to write (default graph.svg)")
    parser.add_argument("--backward", action="store_true", help="draw the backward graph (the VJP rules)")
    parser.add_argument("--batch", type=int, default=10, help="digits in the batch (default 10)")
    parser.add_argument("--rankdir", default="TB", choices=("TB", "LR"), help="top to bottom or left to right")
    parser.add_argument("--max-nodes", type=int, default=DEFAULT_MAX_NODES,
                        help=f"fold scopes beyond this many nodes (default {DEFAULT_MAX_NODES})")
    parser.set_defaults(run=run_graph_command)
    return parser


def run_graph_command(args):
    """`tinygrad-edu graph ...`: write the drawing; problems are one-line errors (exit 1 or 2)."""
    import pathlib
    import sys

    from . import models
    out = pathlib.Path(args.out)
    fmt = out.suffix.lstrip(".").lower()
    if fmt not in ("svg", "png", "pdf", "dot", "gv"):
        print(f"tinygrad-edu: error: graph: --out must end in .svg, .png, .pdf, .dot or .gv, got {args.out!r}",
              file=sys.stderr)
        return 2
    try:
        params, images, labels = example_batch(args.model, args.batch)
    except ValueError as error:
        print(f"tinygrad-edu: error: graph: {error}", file=sys.stderr)
        return 2
    loss = models.loss_fn(params, images, labels)
    loss.name = "loss"
    loss.backward()
    graph = draw_graph(loss, backward=args.backward, rankdir=args.rankdir, max_nodes=args.max_nodes)
    if out.parent != pathlib.Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if fmt in ("dot", "gv"):
            out.write_text(graph.source)
        else:
            out.write_bytes(graph.pipe(format=fmt))
    except GraphvizNotFoundError as error:
        print(f"tinygrad-edu: error: graph: {error}", file=sys.stderr)
        return 1
    caption = graph.captions[0].split(" (")[0]      # e.g. 'forward graph: 19 ops, 10 leaves'
    print(f"wrote {out}  ({caption}; model {args.model}, batch {args.batch})")
    return 0
