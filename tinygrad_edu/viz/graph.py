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

Leaves carry the names learners know them by (`conv1.weight`, `images`, `target`), else their
role. show_values adds the numbers (viz.dot.format_values); the backward view gets them by
replaying backward's arithmetic (_replay_backward). Each tensor backward visits is one *step*:
draw_graph(step=k) highlights step k's nodes with the gradients they receive and send, and
shades the steps before it (viz.steps writes every frame and a page to flip through them).

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
import linecache

import numpy as np

from ..engine import Tensor, _fit_gradient, no_grad, topological_order
from .dot import _emit, _grad_line, _tuple, format_params, format_shape, format_values

__all__ = ["draw_graph", "step_frames", "DEFAULT_MAX_NODES"]

DEFAULT_MAX_NODES = 200


# --------------------------------------------------------------------------------------------
# VJP rules, as text for the backward view: each primitive's registration carries them
# (defvjp(..., rules=...)); a primitive without them shows its VJP's source
# --------------------------------------------------------------------------------------------
# elementwise ops broadcast their inputs; the engine sums each gradient back to its input's shape
_BROADCASTING_OPS = {"add", "sub", "mul", "div", "pow", "maximum", "where"}


def _vjp_rule_lines(t, i):
    """What the VJP of t's op does for input i: ['conv2d d/dx: ...', optional detail lines]."""
    prim, x = t.op, t.inputs[i]
    name = prim.__name__
    rule = prim.rules
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


def _input_name(prim, i):
    """The name the VJPs give input i (their parameters are g, ans, *inputs), e.g. 'x', 'weight'."""
    code = getattr(_vjp_function(prim, i), "__code__", None)
    if code is None or getattr(prim.vjps, "any_number", False):
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
    the gradient's way back to the input), which the layout keeps straight. `values`: lines of
    numbers shown with show_values=True; `steps`: (first, last) step of backward the node belongs
    to, and `step_lines` the numbers shown while it is the current step (draw_graph(step=k))."""
    __slots__ = ("kind", "lines", "scope", "tooltip", "main", "values", "steps", "step_lines")

    def __init__(self, kind, lines, scope=None, tooltip=None, main=False, values=(), steps=None, step_lines=()):
        self.kind, self.lines, self.scope, self.tooltip, self.main = kind, lines, scope, tooltip, main
        self.values, self.steps, self.step_lines = list(values), steps, list(step_lines)


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
    """The name a learner knows a leaf by (models name their parameters `conv1.weight`, the tools
    their inputs `images`, cross_entropy its `target`); else its role, and a scalar its value."""
    if t.name:
        return t.name
    if t.requires_grad:
        return "unnamed parameter"
    if t.size == 1 and np.issubdtype(t.dtype, np.number):
        return f"const {t.data.item():.4g}"
    return "input" if t.dtype.kind == "f" else "constant"


def _tensor_lines(t):
    lines = [f"{_tuple(t.shape)} {t.dtype.name}"]
    grad_line = _grad_line(t)
    if grad_line:
        lines.append(grad_line)
    return lines


def _value_lines(t):
    """show_values: the data (and, after backward, the gradient) themselves, each in its colour."""
    lines = [("value", line) for line in format_values(t.data)]
    if t.grad is not None:
        lines += [("grad", line) for line in format_values(t.grad.data, "grad")]
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
            lines = [_leaf_title(t)] + _tensor_lines(t)
            nodes.append(_Node(kind, lines, leaf_scope.get(id(t)), values=_value_lines(t) if show_values else ()))
            continue
        n_ops += 1
        head = " ".join(filter(None, [t.op.__name__, format_params(t.params)]))
        if t.name:
            head = f"{t.name} = {head}"
        nodes.append(_Node("output" if is_root else "op", [head] + _tensor_lines(t), t.scope,
                           tooltip=t.scope or None, main=id(t) in data, values=_value_lines(t) if show_values else ()))
        for x in t.inputs:
            edges.append((index[id(x)], index[id(t)], format_shape(x.shape)))
    caption = f"forward graph: {n_ops} ops, {len(order) - n_ops} leaves"
    return nodes, edges, [index[id(r)] for r in roots], caption


def _replay_backward(roots, order):
    """Run backward's arithmetic again, as engine._backprop does it (the same visiting order, the
    same VJPs, each result summed back to its input's shape), without touching any `.grad`:
    {id(tensor): the gradient it received} and {(id(tensor), i): the gradient it sent input i}."""
    grads = {id(r): Tensor(np.ones_like(r.data)) for r in roots}
    received, sent = {}, {}
    with no_grad():
        for t in reversed(order):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            received[id(t)] = g.data
            vjps = t.op.vjps if t.op is not None else ()
            for i, x in enumerate(t.inputs):
                if not x.requires_grad or i >= len(vjps) or vjps[i] is None:
                    continue
                gx = _fit_gradient(vjps[i](g, t, *t.inputs, **t.params), x, t.op)   # as backward does
                sent[(id(t), i)] = gx.data
                grads[id(x)] = grads[id(x)] + gx if id(x) in grads else gx
    return received, sent


def _grad_lines(data, what):
    return [("grad", line) for line in format_values(data, what)]


def _backward_description(roots, show_values, stepping):
    """The backward graph. Each tensor backward visits is one step (numbered from 1, in the
    engine's order); every node records the step it belongs to, and, when values are asked for
    (show_values, or stepping through), the gradients it received and sent."""
    for r in roots:
        if not r.requires_grad:
            raise ValueError("draw_graph(backward=True): the output does not require grad, so "
                             "backward has nothing to walk (no input of its ops has requires_grad=True)")
    order = topological_order(roots)
    leaf_scope = _leaf_scopes(order)
    data = _data_path(topological_order(roots, grad_only=False))
    received, sent = _replay_backward(roots, order) if show_values or stepping else ({}, {})
    nodes, edges = [], []
    sources = collections.defaultdict(list)  # id(tensor) -> nodes that send it a gradient
    step_names = []                          # step k -> what backward does in it

    def add(node):
        nodes.append(node)
        return len(nodes) - 1

    for r in roots:
        title = "seed: d{0}/d{0} = 1".format(r.name) if r.name and r.size == 1 else \
            ("seed: dL/dL = 1" if r.size == 1 else "seed gradient (ones)")
        sources[id(r)].append(add(_Node("seed", [title, _tuple(r.shape)], main=True, steps=(0, 0))))
    seeds = list(range(len(nodes)))
    n_vjps = 0
    for t in reversed(order):                      # outputs first, as backward runs
        senders = sources.pop(id(t), None)
        if not senders:
            continue                              # cut off: every path here has a VJP of None
        step = len(step_names) + 1
        here = (step, step)
        scope = t.scope if not t.is_leaf else leaf_scope.get(id(t))
        shape = format_shape(t.shape)
        g_in = _grad_lines(received[id(t)], "g") if id(t) in received else []
        accumulated = len(senders) > 1
        if accumulated:                           # used in several places: the gradients add up
            total = add(_Node("accumulate", ["+", f"{len(senders)} grads", _tuple(t.shape)], scope,
                              main=id(t) in data, steps=here, values=g_in, step_lines=g_in))
            edges.extend((s, total, shape) for s in senders)
            senders = [total]
        (sender,) = senders
        if t.is_leaf:
            step_names.append(f"{_leaf_title(t)}.grad receives its gradient")
            lines = [f"{_leaf_title(t)}.grad", f"{_tuple(t.shape)} {t.dtype.name}"]
            if t.grad is not None:  # drawn after a backward: how big the gradient came out
                lines.append(f"|g|={float(np.linalg.norm(np.asarray(t.grad.data, np.float64))):.4g}")
            values = _grad_lines(received[id(t)], "grad") if id(t) in received else []
            edges.append((sender, add(_Node("grad", lines, scope, steps=here, values=values, step_lines=values)), shape))
            continue
        vjps = t.op.vjps
        applied = []
        for i, x in enumerate(t.inputs):
            if not x.requires_grad or i >= len(vjps) or vjps[i] is None:
                continue
            n_vjps += 1
            rule = _vjp_rule_lines(t, i)
            applied.append(f"d/d{_input_name(t.op, i)}")
            out = _grad_lines(sent[(id(t), i)], f"sends d{_input_name(t.op, i)}") if (id(t), i) in sent else []
            # the gradient received shows on the + node when there is one, else on each VJP
            vjp = add(_Node("vjp", rule, scope, tooltip=t.scope or None, main=id(x) in data, steps=here,
                            values=out, step_lines=([] if accumulated else g_in) + out))
            edges.append((sender, vjp, shape))
            sources[id(x)].append(vjp)
        step_names.append(f"{t.op.__name__}" + (f" (in {t.scope})" if t.scope else "")
                          + f" applies its VJP{'s' if len(applied) > 1 else ''} {', '.join(applied)}")
    caption = f"backward graph: {n_vjps} VJPs (edges carry gradient shapes)"
    return nodes, edges, seeds, caption, step_names


# --------------------------------------------------------------------------------------------
# Step 2: folding, when there are more than max_nodes nodes
# --------------------------------------------------------------------------------------------
def _scope_prefix(scope, depth):
    return "/".join(scope.split("/")[:depth])


def _fold(nodes, edges, roots, max_nodes, backward):
    """Map each node to what is drawn for it: itself (its index), a collapsed scope (a string
    key) or the one 'folded' node. Returns (group_of, notes)."""
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
        # a box of folded nodes is 'done' in a step of backward when all of them are, current
        # from its first node's step to its last one's
        stepped = [nodes[i].steps for i in idx if nodes[i].steps is not None]
        steps = (min(a for a, _ in stepped), max(b for _, b in stepped)) if stepped else None
        if not isinstance(g, str):
            drawn.append(nodes[g])
        elif g == "...":
            drawn.append(_Node("folded", [f"... {len(idx)} nodes folded", "(raise max_nodes to see them)"],
                               steps=steps))
        else:
            kinds = collections.Counter(nodes[i].kind for i in idx)
            detail = ", ".join(f"{c} {k}{'s' if c > 1 else ''}" for k, c in kinds.items())
            parent = g.rsplit("/", 1)[0] if "/" in g else None
            drawn.append(_Node("scope", [g.rsplit("/", 1)[-1], f"{len(idx)} nodes folded", detail], parent,
                               tooltip=g, steps=steps))
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
# The public function
# --------------------------------------------------------------------------------------------
def draw_graph(root, *, backward=False, show_values=False, rankdir="TB", max_nodes=DEFAULT_MAX_NODES,
               legend=True, step=None):
    """Draw the graph that made `root` (a Tensor, or a list of Tensors) as a graphviz.Digraph.

    Forward view: a node per op (name, parameters, output shape and dtype) and per leaf (its name,
    e.g. `conv1.weight` or `images`, else its role: input, constant, unnamed parameter; shape,
    dtype; after backward the gradient's shape and norm); edges carry shapes; parameters,
    inputs/constants, ops and the output have their own colours (the legend under the graph). A
    tensor used several times is drawn once. Ops made inside `tinygrad_edu.scope("name")` are boxed
    together.

    backward=True: the graph backpropagation walks, one node per VJP naming its rule (the text
    its defvjp registration carries), with the gradient shapes on the edges.

    show_values: the numbers themselves, with their signs: all of them for a tensor of up to 16,
    else min / mean / max and the fraction of zeros; values (the data) in blue, gradients in red.
    Forward view: each tensor's value and, after backward, its gradient; backward view: the
    gradient each VJP sends and each parameter's gradient.

    step=k (implies backward=True): step k of backward, from 1 to `graph.steps`, in the order the
    engine visits the tensors (outputs first). The nodes of step k are highlighted and show the
    gradient they receive and the gradients they send; the nodes of earlier steps are shaded.

    rankdir: Graphviz's layout direction, "TB" (top to bottom) or "LR" (left to right).
    max_nodes: above this many nodes, scopes collapse into single boxes (deepest first) and, if
    that is not enough, the nodes farthest from the output fold into one; a note says how many
    were folded. None draws everything. legend=False leaves the legend out.

    Node labels write shapes as Python prints them, (10, 3, 24, 24); edges use the short form
    10x3x24x24. After drawing, `graph.captions` holds the caption lines (counts, folding notes),
    and a backward graph's `graph.steps` the number of steps.

    The result is a graphviz.Digraph: `.source` is the DOT text; `.pipe(format)`, `.render(...)`
    and Jupyter's inline display draw it with Graphviz's `dot` or, without it, with the
    `graphviz-pure` program pip installs with tinygrad_edu (SVG, PNG; PDF needs Graphviz).
    """
    if step is not None:
        backward = True
    nodes, edges, captions, step_names = _describe(root, backward, show_values, step is not None, rankdir,
                                                   max_nodes)
    if step is not None and not (isinstance(step, (int, np.integer)) and 1 <= step <= len(step_names)):
        raise ValueError(f"draw_graph: step must be a whole number from 1 to {len(step_names)} "
                         f"(the steps of this backward), got {step!r}")
    return _finish(nodes, edges, captions, step_names, rankdir, legend, backward, step, show_values)


def step_frames(root, *, rankdir="TB", max_nodes=DEFAULT_MAX_NODES, legend=True):
    """draw_graph(root, step=k) for k = 1, 2, ... every step of backward, as a generator; the
    graph is walked (and backward's arithmetic replayed) once for all the frames."""
    nodes, edges, captions, step_names = _describe(root, True, False, True, rankdir, max_nodes)
    for step in range(1, len(step_names) + 1):
        yield _finish(nodes, edges, captions, step_names, rankdir, legend, True, step, False)


def _describe(root, backward, show_values, stepping, rankdir, max_nodes):
    """Steps 1 and 2: the nodes and edges to draw, the caption lines, and (backward) the steps."""
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    for r in roots:
        if not isinstance(r, Tensor):
            raise TypeError(f"draw_graph: expected a Tensor (or a list of them), got {type(r).__name__}")
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"draw_graph: rankdir must be 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    if max_nodes is not None and max_nodes < 2:
        raise ValueError(f"draw_graph: max_nodes must be at least 2 (or None), got {max_nodes}")
    if backward:
        nodes, edges, root_nodes, caption, step_names = _backward_description(roots, show_values, stepping)
    else:
        nodes, edges, root_nodes, caption = _forward_description(roots, show_values)
        step_names = None
    captions = [caption]
    if max_nodes is not None and len(nodes) > max_nodes:
        group_of, notes = _fold(nodes, edges, root_nodes, max_nodes, backward)
        nodes, edges = _apply_folding(nodes, edges, group_of)
        captions += notes
    return nodes, edges, captions, step_names


def _finish(nodes, edges, captions, step_names, rankdir, legend, backward, step, show_values):
    """Step 3: the DOT, for one step of backward when `step` is given."""
    if step is not None:
        captions = [f"step {step} of {len(step_names)}: {step_names[step - 1]}"] + captions
    graph = _emit(nodes, edges, captions, rankdir, legend, backward, step, show_values)
    if step_names is not None:
        graph.steps, graph.step_names = len(step_names), step_names
    return graph
