"""draw_graph: the DOT it writes and the SVG that Graphviz's `dot` really renders from it."""
import html
import inspect
import re
import sys
import time
import xml.etree.ElementTree as ET

import graphviz
import numpy as np
import pytest

import tinygrad_edu as tg
import tinygrad_edu.functional as F
from tinygrad_edu import models
from tinygrad_edu.viz import GraphvizNotFoundError

SVG = "{http://www.w3.org/2000/svg}"


# ---- reading what draw_graph wrote ------------------------------------------------------------
def dot_nodes(graph):
    """{node id: label} of the graph's own nodes (the legend's are left out). A label with
    numbers in colour is HTML-like (<...<br/>...>): its lines come back as plain text."""
    found = re.findall(r'^\s*(n\d+) \[label=("(?:[^"\\]|\\.)*"|<.*>) \w+=', graph.source, flags=re.M)
    labels = {}
    for name, label in found:
        if label.startswith("<"):
            labels[name] = html.unescape(re.sub(r"<[^>]*>", "", label[1:-1].replace("<br/>", "\n")))
        else:
            labels[name] = re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), label[1:-1])
    return labels


def dot_edges(graph):
    """[(source, target, label)] between the graph's own nodes."""
    found = re.findall(r'^\s*(n\d+) -> (n\d+) \[label=("[^"]*"|[^ \]]+)', graph.source, flags=re.M)
    return [(s, d, label.strip('"')) for s, d, label in found]


def walk_dot_clusters(graph):
    """Follow the DOT's braces: yield ("cluster", its label, the label of the cluster it sits in)
    for each scope cluster (the legend left out), and ("node", the first line of its label, the
    cluster it is drawn in) for each node; None where there is no enclosing cluster."""
    stack = []
    for line in graph.source.splitlines():
        line = line.strip()
        if line.startswith("subgraph cluster_"):
            stack.append(None)
        elif stack and stack[-1] is None and line.startswith("graph ["):
            stack[-1] = re.search(r'label="?([^" \]]+)"?', line).group(1)
            yield "cluster", stack[-1], stack[-2] if len(stack) > 1 else None
        elif line == "}" and stack:
            stack.pop()
        elif re.match(r"n\d+ \[label=", line):
            yield "node", re.match(r'n\d+ \[label="?([^"\\]+)', line).group(1), stack[-1] if stack else None


def dot_cluster_tree(graph):
    """[(cluster label, the label of the cluster it sits in, or None)], in the order written."""
    return [(label, parent) for kind, label, parent in walk_dot_clusters(graph) if kind == "cluster"]


def dot_node_clusters(graph):
    """{first line of a node's label: the label of the cluster it is drawn in, or None}."""
    return {label: cluster for kind, label, cluster in walk_dot_clusters(graph) if kind == "node"}


def dot_clusters(graph):
    """The labels of the scope clusters, in the order they are written."""
    return [label for label, _ in dot_cluster_tree(graph)]


def svg_of(graph):
    root = ET.fromstring(graph.pipe(format="svg"))
    groups = {"node": [], "edge": [], "cluster": []}
    for g in root.iter(f"{SVG}g"):
        kind = g.get("class")
        if kind in groups:
            title = g.find(f"{SVG}title").text
            texts = [t.text or "" for t in g.iter(f"{SVG}text")]
            groups[kind].append((title, texts))
    return groups


def own(items):
    """Leave out the legend's nodes, edges and cluster."""
    return [(title, texts) for title, texts in items if "legend" not in title]


# ---- models -----------------------------------------------------------------------------------
def small_model():
    """x (4, 3) -> fc (matmul, add, relu) -> h * h (h reused) -> sum -> * 0.5: 6 ops, 4 leaves."""
    rng = np.random.default_rng(0)
    x = tg.Tensor(rng.standard_normal((4, 3)).astype(np.float32), name="x")
    W = tg.Tensor(rng.standard_normal((3, 2)).astype(np.float32), requires_grad=True, name="W")
    b = tg.Tensor(np.zeros(2, np.float32), requires_grad=True, name="b")
    with tg.scope("fc"):
        h = (x @ W + b).relu()
    loss = (h * h).sum() * 0.5
    return loss, dict(x=x, W=W, b=b, h=h)


def seed_loss():
    params = models.init_params("seed", rng=0)
    x = tg.Tensor(np.random.default_rng(1).random((10, 1, 28, 28), dtype=np.float32), name="images")
    y = np.arange(10) % 10
    loss = models.loss_fn(params, x, y)
    return loss, params


def reachable(root, grad_only=False):
    """An independent count of the distinct tensors and of the op-input edges under root."""
    seen, stack, n_edges = {id(root): root}, [root], 0
    while stack:
        t = stack.pop()
        for x in t.inputs:
            if grad_only and not x.requires_grad:
                continue
            n_edges += 1
            if id(x) not in seen:
                seen[id(x)] = x
                stack.append(x)
    return list(seen.values()), n_edges


# ---- forward view -----------------------------------------------------------------------------
def test_known_model_node_and_edge_counts_in_dot():
    loss, _ = small_model()
    graph = tg.draw_graph(loss)
    assert isinstance(graph, graphviz.Digraph)
    nodes, edges = dot_nodes(graph), dot_edges(graph)
    # ops: matmul, add, relu, mul, sum, mul; leaves: x, W, b, the constant 0.5
    assert len(nodes) == 10
    # matmul 2 + add 2 + relu 1 + mul 2 (h twice) + sum 1 + mul 2
    assert len(edges) == 10
    assert "6 ops, 4 leaves" in graph.source


def test_known_model_counts_in_rendered_svg():
    loss, _ = small_model()
    svg = svg_of(tg.draw_graph(loss))
    assert len(own(svg["node"])) == 10
    assert len(own(svg["edge"])) == 10
    assert [texts[0] for _, texts in svg["cluster"]] == ["fc"]


def test_the_legend_is_under_the_graph_and_adds_no_nodes():
    loss, _ = small_model()
    graph = tg.draw_graph(loss)
    assert all(name.startswith("n") for name in re.findall(r"^\s*(\w+) \[label=", graph.source, flags=re.M))
    texts = [t.text for t in ET.fromstring(graph.pipe(format="svg")).iter(f"{SVG}text")]
    for entry in ("parameter (leaf, requires grad)", "input / constant (leaf)", "op (and its result)", "output",
                  "forward graph: 6 ops, 4 leaves"):
        assert entry in texts
    assert "parameter (leaf" not in tg.draw_graph(loss, legend=False).source


def test_reused_tensor_is_drawn_once():
    loss, t = small_model()
    graph = tg.draw_graph(loss)
    relu_nodes = [n for n, label in dot_nodes(graph).items() if label.startswith("relu")]
    assert len(relu_nodes) == 1
    out_edges = [e for e in dot_edges(graph) if e[0] == relu_nodes[0]]
    assert len(out_edges) == 2 and all(label == "4x2" for _, _, label in out_edges)


def test_labels_carry_names_shapes_dtypes_and_edges_carry_shapes():
    loss, _ = small_model()
    labels = dot_nodes(tg.draw_graph(loss)).values()
    assert "x\n(4, 3) float32" in labels
    assert "W\n(3, 2) float32" in labels
    assert "matmul\n(4, 2) float32" in labels
    assert "const 0.5\n() float32" in labels
    edge_labels = sorted(label for _, _, label in dot_edges(tg.draw_graph(loss)))
    assert edge_labels == sorted(["4x3", "3x2", "4x2", "2", "4x2", "4x2", "4x2", "4x2", "scalar", "scalar"])


def test_gradient_shape_and_norm_appear_after_backward():
    loss, t = small_model()
    assert "grad" not in "".join(dot_nodes(tg.draw_graph(loss)).values())
    loss.backward()
    labels = list(dot_nodes(tg.draw_graph(loss)).values())
    norm = np.linalg.norm(t["W"].grad.data)
    assert f"W\n(3, 2) float32\ngrad (3, 2)  |g|={norm:.4g}" in labels


def test_show_values_and_rankdir():
    loss, _ = small_model()
    graph = tg.draw_graph(loss, show_values=True, rankdir="LR")
    assert "rankdir=LR" in graph.source
    labels = "\n".join(dot_nodes(graph).values())
    assert "value +0.5" in labels and "value [+0 +0]" in labels     # the constant, the bias b


def test_scope_nesting_becomes_nested_clusters():
    x = tg.Tensor(np.ones((2, 2), np.float32), requires_grad=True, name="x")
    with tg.scope("block"):
        with tg.scope("inner"):
            y = x.exp()
        z = y.sum()
    assert sorted(dot_cluster_tree(tg.draw_graph(z))) == [("block", None), ("inner", "block")]


def test_seed_model_forward_graph():
    loss, params = seed_loss()
    graph = tg.draw_graph(loss)
    tensors, n_edges = reachable(loss)
    nodes, edges = dot_nodes(graph), dot_edges(graph)
    assert len(nodes) == len(tensors) and len(edges) == n_edges
    labels = "\n".join(nodes.values())
    for text in ("conv2d stride=1 pad=0", "max_pool2d kernel=2 stride=2 pad=0", "cross_entropy reduction=mean",
                 "images\n(10, 1, 28, 28) float32", "conv1.weight\n(3, 1, 5, 5) float32",
                 "conv2.weight\n(6, 3, 5, 5) float32"):
        assert text in labels
    for shape in ((10, 3, 24, 24), (10, 3, 12, 12), (10, 6, 8, 8), (10, 6, 4, 4), (10, 96), (10, 80), (10, 10)):
        assert f"{shape} float32" in labels                                    # nodes: as Python prints it
        assert any(label == "x".join(map(str, shape)) for _, _, label in edges)  # edges: 10x3x24x24
    assert dot_clusters(graph) == ["conv1", "conv2", "fc1", "fc2", "loss"][:len(dot_clusters(graph))]
    assert {"conv1", "conv2", "fc1", "fc2"} <= set(dot_clusters(graph))
    svg = svg_of(graph)
    assert len(own(svg["node"])) == len(tensors) and len(own(svg["edge"])) == n_edges
    cluster_names = {texts[0] for _, texts in own(svg["cluster"])}
    assert {"conv1", "conv2", "fc1", "fc2"} <= cluster_names
    # each layer's parameters are drawn inside its box, the input outside every box
    where = dot_node_clusters(graph)
    for name in params:
        assert where[name] == name.split(".")[0]
    assert where["images"] is None


# ---- backward view ----------------------------------------------------------------------------
def test_backward_graph_of_the_seed_model_names_the_vjp_rules():
    loss, params = seed_loss()
    loss.backward()
    graph = tg.draw_graph(loss, backward=True)
    nodes, edges = dot_nodes(graph), dot_edges(graph)
    labels = list(nodes.values())
    # one VJP node per (op, input that requires grad)
    tensors, _ = reachable(loss, grad_only=True)
    n_vjps = sum(1 for t in tensors for i, x in enumerate(t.inputs) if x.requires_grad)
    assert sum(1 for label in labels if " d/d" in label) == n_vjps
    conv2_dx = [label for label in labels if label.startswith("conv2d d/dx:")]
    assert conv2_dx == ["conv2d d/dx: full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))\n"
                        "pad g by 4; flip(W^T) (3, 6, 5, 5)"]  # conv1's input needs no gradient
    assert sum(label.startswith("conv2d d/dw: corr(x, g)") for label in labels) == 2
    assert any(label.startswith("cross_entropy d/dlogits: (softmax(logits) - onehot(target)) * g / N") for label in labels)
    assert any(label.startswith("max_pool2d d/dx: route g to each window's first max") for label in labels)
    assert sum(label.startswith("conv2d d/dbias: sum g over (N, H, W)") for label in labels) == 2   # the bias, inside conv2d
    # every parameter ends in a .grad node, with its gradient's norm
    for name, p in params.items():
        norm = np.linalg.norm(p.grad.data)
        assert f"{name}.grad\n{p.shape} float32\n|g|={norm:.4g}" in labels
    # gradient shapes on the edges: the seed question's delta and its answer
    conv2_node = next(n for n, label in nodes.items() if label.startswith("conv2d d/dx"))
    into = [label for s, d, label in edges if d == conv2_node]
    out_of = [label for s, d, label in edges if s == conv2_node]
    assert into == ["10x6x8x8"] and out_of == ["10x3x12x12"]
    assert labels[0].startswith("seed: dL/dL = 1") or any(label.startswith("seed:") for label in labels)


def test_backward_accumulates_a_reused_tensors_gradients():
    loss, _ = small_model()
    graph = tg.draw_graph(loss, backward=True)
    nodes = dot_nodes(graph)
    plus = [n for n, label in nodes.items() if label.startswith("+\n2 grads")]
    assert len(plus) == 1
    assert sum(1 for s, d, _ in dot_edges(graph) if d == plus[0]) == 2
    assert "mul d/dx: g * y" in nodes.values() and "mul d/dy: g * x" in nodes.values()


def test_backward_graph_of_a_users_primitive_shows_its_vjp_source():
    cube = tg.primitive(lambda x: x ** 3, "cube")
    tg.defvjp(cube, lambda g, ans, x: g * 3 * x * x)
    w = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="w")
    labels = dot_nodes(tg.draw_graph(cube(w).sum(), backward=True)).values()
    assert "cube d/dx: g * 3 * x * x" in labels


def test_backward_of_an_output_without_grad_is_a_clear_error():
    with pytest.raises(ValueError, match="does not require grad"):
        tg.draw_graph(tg.Tensor(np.ones(2)).exp(), backward=True)
    with pytest.raises(TypeError, match="expected a Tensor"):
        tg.draw_graph(np.ones(2))
    with pytest.raises(ValueError, match="rankdir"):
        tg.draw_graph(tg.Tensor(np.ones(2)), rankdir="up")


# ---- rendering --------------------------------------------------------------------------------
def test_render_writes_svg_and_png_and_jupyter_gets_svg(tmp_path):
    loss, _ = seed_loss()
    graph = tg.draw_graph(loss)
    svg_path = graph.render(tmp_path / "seed", format="svg", cleanup=True)
    png_path = graph.render(tmp_path / "seed", format="png", cleanup=True)
    assert open(svg_path).read().lstrip().startswith("<?xml")
    assert open(png_path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    bundle = graph._repr_mimebundle_()       # what Jupyter calls to display it inline
    assert "<svg" in bundle["image/svg+xml"]


def test_with_no_renderer_at_all_the_source_works_and_rendering_says_what_to_install(monkeypatch, tmp_path):
    """Neither `dot` nor graphviz-pure (a broken install): one line saying what to install."""
    from tinygrad_edu.viz import render
    loss, _ = small_model()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(render, "_pure_program", lambda: None)
    graph = tg.draw_graph(loss)
    assert graph.source.startswith("digraph forward")
    for draw in (lambda: graph.pipe(format="svg"), lambda: graph.render(tmp_path / "g", format="png")):
        with pytest.raises(GraphvizNotFoundError, match="pip install graphviz-pure.*apt-get install graphviz") as info:
            draw()
        assert isinstance(info.value, graphviz.ExecutableNotFound)  # existing handlers still catch it
        assert "\n" not in str(info.value)
    # Jupyter: no traceback, one line in place of the picture
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["text/plain"] and "pip install graphviz-pure" in bundle["text/plain"]
    assert graph._repr_svg_() is None


# ---- big graphs -------------------------------------------------------------------------------
def deep_scoped_graph(blocks=100, layers=25):
    """10,000 ops (4 per layer) in `blocks` scopes of `layers` sub-scopes each."""
    w = tg.Tensor(np.eye(4, dtype=np.float32), requires_grad=True, name="w")
    h = tg.Tensor(np.ones((2, 4), np.float32), name="x")
    for block in range(blocks):
        with tg.scope(f"block{block}"):
            for layer in range(layers):
                with tg.scope(f"layer{layer}"):
                    h = ((h @ w) * 0.5).tanh() + 1.0
    return h


def test_ten_thousand_ops_build_quickly_and_fold_into_scope_boxes():
    out = deep_scoped_graph()
    assert len(reachable(out)[0]) > 10_000
    start = time.perf_counter()
    graph = tg.draw_graph(out)
    backward = tg.draw_graph(out, backward=True)
    elapsed = time.perf_counter() - start
    assert elapsed < 4, f"two 10,000-op graphs took {elapsed:.2f}s"   # about 0.2 s each here
    for g in (graph, backward):
        nodes = dot_nodes(g)
        assert len(nodes) <= 200
        boxes = [label for label in nodes.values() if label.startswith("block")]
        assert len(boxes) == 100 and "nodes folded" in boxes[0]
        assert re.search(r"\d+ of \d+ nodes folded into 100 scope boxes", g.source)


def test_deepest_scopes_collapse_first():
    out = deep_scoped_graph(blocks=3, layers=4)    # 48 ops in 12 layer scopes inside 3 blocks
    graph = tg.draw_graph(out, max_nodes=30)
    labels = list(dot_nodes(graph).values())
    assert sum(label.startswith("layer") for label in labels) == 12      # each layer one box ...
    assert dot_clusters(graph) == ["block0", "block1", "block2"]        # ... still inside its block
    assert "scopes of depth 2 and deeper collapsed" in graph.source
    graph = tg.draw_graph(out, max_nodes=8)
    assert sum(label.startswith("block") for label in dot_nodes(graph).values()) == 3


def test_an_unscoped_chain_folds_what_is_farthest_from_the_output():
    w = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="w")
    h = w
    for _ in range(10_000):
        h = h * 1.0001
    graph = tg.draw_graph(h.sum(), max_nodes=50)
    nodes = dot_nodes(graph)
    assert len(nodes) == 50
    folded = [label for label in nodes.values() if label.startswith("... ")]
    assert folded == ["... 9954 nodes folded\n(raise max_nodes to see them)"]   # 10,003 - 49 kept
    assert "9954 of 10003 nodes, the farthest from the output, folded into one node" in graph.source


def test_building_never_recurses():
    w = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    h = w
    for _ in range(20_000):
        h = h + 1.0
    depth = len(inspect.stack())
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 120)   # a recursive walk of 20,000 ops could not fit in this
    try:
        forward = tg.draw_graph(h.sum(), max_nodes=None)
        backward = tg.draw_graph(h.sum(), backward=True)
    finally:
        sys.setrecursionlimit(limit)
    assert len(dot_nodes(forward)) == 20_003
    assert len(dot_nodes(backward)) <= 200


# ---- names --------------------------------------------------------------------------------------
def test_every_leaf_of_the_seed_model_is_labelled_by_its_name():
    loss, params = seed_loss()
    forward, backward = dot_nodes(tg.draw_graph(loss)), dot_nodes(tg.draw_graph(loss, backward=True))
    titles = [label.split("\n")[0] for label in forward.values()]
    assert set(params) | {"images", "target"} <= set(titles)     # cross_entropy names its target
    assert not {"param", "input", "constant", "unnamed parameter"} & set(titles)
    grads = sorted(label.split("\n")[0] for label in backward.values() if ".grad" in label.split("\n")[0])
    assert grads == sorted(f"{name}.grad" for name in params)
    # the CLI's example batch names its inputs and targets
    from tinygrad_edu.cli import example_batch
    _, images, labels = example_batch("seed", 2)
    assert (images.name, labels.name) == ("images", "labels")


def test_an_unnamed_leaf_says_its_role_never_a_bare_param():
    w = tg.Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    x = tg.Tensor(np.ones((4, 3), np.float32))
    index = tg.Tensor(np.array([0, 1]))
    loss = ((x @ w)[:, index.data] * 2.0).sum()
    labels = list(dot_nodes(tg.draw_graph([loss, index])).values())
    assert "unnamed parameter\n(3, 2) float32" in labels
    assert "input\n(4, 3) float32" in labels and "const 2\n() float32" in labels
    assert any(label.startswith("constant\n(2,) int") for label in labels)
    assert "unnamed parameter.grad\n(3, 2) float32" in dot_nodes(tg.draw_graph(loss, backward=True)).values()
    assert not any(re.match(r"param(\n|\.)", label) for label in labels)


# ---- signed values ------------------------------------------------------------------------------
def test_values_small_in_full_with_sign_large_as_statistics_with_zeros():
    from tinygrad_edu.viz.dot import format_values
    assert format_values(np.array([0.5, -1.25, 0.0, -0.0])) == ["value [+0.5 -1.25 +0 +0]"]
    assert format_values(np.array([[1, -2], [3, 4]]), "g") == ["g [+1 -2]", "[+3 +4]"]
    assert format_values(np.float32(-3)) == ["value -3"]
    relu_like = np.maximum(np.linspace(-1, 3, 40), 0)            # 10 of 40 are zero (a dead quarter)
    assert format_values(relu_like, "grad") == [f"grad min +0  mean {relu_like.mean():+.4g}  max +3",
                                                "grad: 25% zeros (of 40)"]
    assert format_values(np.ones(17))[0].startswith("value min +1")  # 17 numbers: statistics


def test_values_and_gradients_are_coloured_and_labelled_apart():
    loss, t = small_model()
    loss.backward()
    graph = tg.draw_graph(loss, show_values=True)
    W = t["W"]
    label = next(label for label in dot_nodes(graph).values() if label.startswith("W\n"))
    rows = [" ".join(f"{v:+.4g}" for v in row) for row in W.data]
    grads = [" ".join(f"{v + 0.0:+.4g}" for v in row) for row in W.grad.data]
    assert f"value [{rows[0]}]\n[{rows[1]}]\n[{rows[2]}]" in label
    assert f"grad [{grads[0]}]\n[{grads[1]}]\n[{grads[2]}]" in label
    value_colour = re.search(r'<font color="(#\w+)">value \[', graph.source).group(1)
    grad_colour = re.search(r'<font color="(#\w+)">grad \[', graph.source).group(1)
    assert value_colour != grad_colour
    assert "value: the data" in graph.source and "grad / g: a gradient" in graph.source   # the legend
    # backward view: what each VJP sends, and each parameter's gradient, in the gradients' colour
    backward = tg.draw_graph(loss, backward=True, show_values=True)
    labels = list(dot_nodes(backward).values())
    assert any(label.startswith("W.grad") and f"grad [{grads[0]}]" in label for label in labels)
    assert any(label.startswith("matmul d/dy: x^T @ g") and "sends dy [" in label for label in labels)
    assert f'<font color="{grad_colour}">sends dy [' in backward.source


# ---- one source of truth for the rules ----------------------------------------------------------
def rule_of(loss, head):
    """The rule text the backward graph shows on the node starting with `head` (without it)."""
    labels = [label for label in dot_nodes(tg.draw_graph(loss, backward=True)).values() if label.startswith(head)]
    assert len(labels) == 1, labels
    return labels[0][len(head):].strip()


def test_every_registered_primitive_has_a_rule_for_each_of_its_inputs():
    from tinygrad_edu import engine, ops
    from tinygrad_edu.viz.graph import _vjp_rule_lines
    prims = {id(p): p for mod in (engine, ops.elementwise, ops.reduce, ops.shape, ops.linalg, ops.conv, ops.pool, ops.loss)
             for p in vars(mod).values() if callable(p) and hasattr(p, "vjps") and hasattr(p, "rules") and p.vjps}
    assert len(prims) >= 30 and all(p.rules is not None for p in prims.values())
    for p in prims.values():
        if isinstance(p.rules, tuple):
            assert len(p.rules) == len(p.vjps) or getattr(p.vjps, "any_number", False), p.__name__
    # and the graph takes them from there: a rule changed at its registration changes the graph
    x = tg.Tensor(np.ones(2, np.float32), requires_grad=True)
    saved = ops.elementwise.exp.rules
    try:
        ops.elementwise.exp.rules = ("the new text",)
        assert _vjp_rule_lines(x.exp(), 0) == ["exp d/dx: the new text"]
    finally:
        ops.elementwise.exp.rules = saved


def test_the_pow_rules_compute_what_pow_computes():
    rng = np.random.default_rng(0)
    x = tg.Tensor(np.array([0.0, 0.5, 1.5, 2.0]), requires_grad=True)
    y = tg.Tensor(np.array([2.0, -1.5, 0.5, 3.0]), requires_grad=True)
    ans = x ** y
    g = rng.standard_normal(4)
    dx, dy = tg.grad(ans, [x, y], grad_outputs=g)
    env = dict(g=g, x=x.data, y=y.data, ans=ans.data)
    rule_x = rule_of((ans * g).sum(), "pow d/dx:")
    formula, note = rule_x.split("  ")
    assert formula == "g * y * x**(y-1)" and note == "(0 where y = 0, also at x = 0)"
    np.testing.assert_allclose(np.where(y.data == 0, 0, eval(formula, env)), dx.data)
    rule_y = rule_of((ans * g).sum(), "pow d/dy:")
    formula, note = rule_y.split("  ")
    assert note == "(0 where x = 0 and y >= 0)"
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = eval(formula, dict(env, log=np.log))
    np.testing.assert_allclose(np.where((x.data == 0) & (y.data >= 0), 0, expected), dy.data)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_the_cross_entropy_rule_computes_what_cross_entropy_computes(reduction):
    rng = np.random.default_rng(1)
    logits = tg.Tensor(rng.standard_normal((4, 5)), requires_grad=True, name="logits")
    target = np.array([0, 3, 4, 3])
    out = F.cross_entropy(logits, target, reduction=reduction)
    g = rng.standard_normal(out.shape)
    (dlogits,) = tg.grad(out, [logits], grad_outputs=g)
    rule = rule_of((out * g).sum(), "cross_entropy d/dlogits:")
    formula, *n = rule.split(", N = ")
    assert n == (["4"] if reduction == "mean" else [])
    e = np.exp(logits.data - logits.data.max(axis=1, keepdims=True))
    env = dict(softmax=lambda z: e / e.sum(axis=1, keepdims=True), logits=logits.data, target=target, g=g, N=4,
               onehot=lambda t: np.eye(5)[t])
    np.testing.assert_allclose(eval(formula, env), dlogits.data, rtol=1e-12)


def test_the_conv2d_rules_compute_what_conv2d_computes():
    """Follow the recipe the graph shows, with the numbers it shows: dilate, pad, flip(W^T), full
    correlation for dx; the correlation of x with g over swapped axes for dw."""
    import ast
    from numpy.lib.stride_tricks import sliding_window_view
    rng = np.random.default_rng(2)
    x = tg.Tensor(rng.standard_normal((2, 3, 7, 7)), requires_grad=True, name="x")
    w = tg.Tensor(rng.standard_normal((4, 3, 3, 3)), requires_grad=True, name="w")
    y = F.conv2d(x, w, stride=2, padding=1)
    g = rng.standard_normal(y.shape)
    dx, dw = tg.grad(y, [x, w], grad_outputs=g)
    head, recipe = rule_of((y * g).sum(), "conv2d d/dx:").split("\n")
    assert head == "full-corr(dilate(g), flip(W) swapped (C_in, C_out, kH, kW))"
    steps = dict(step.split(" by ") if " by " in step else step.split(" ", 1) for step in recipe.split("; "))
    assert steps == {"dilate g": "1", "pad g": "1", "flip(W^T)": "(3, 4, 3, 3)"}
    gap, pad = int(steps["dilate g"]), int(steps["pad g"])
    dilated = np.zeros((2, 4, 4 + 3 * gap, 4 + 3 * gap))
    dilated[:, :, ::gap + 1, ::gap + 1] = g
    padded = np.pad(dilated, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    kernel = w.data.transpose(1, 0, 2, 3)[:, :, ::-1, ::-1]
    assert kernel.shape == ast.literal_eval(steps["flip(W^T)"])
    windows = sliding_window_view(padded, (3, 3), axis=(2, 3))             # (N, C_out, 7, 7, 3, 3)
    np.testing.assert_allclose(np.einsum("nohwab,coab->nchw", windows, kernel), dx.data, rtol=1e-10, atol=1e-12)
    head, shapes = rule_of((y * g).sum(), "conv2d d/dw:").split("\n")
    assert head == "corr(x, g) over swapped (N, C) axes, stride -> dilation"
    assert shapes == "x as (3, 2, 7, 7), g as kernel -> (4, 3, 3, 3)"
    xp = np.pad(x.data, ((0, 0), (0, 0), (1, 1), (1, 1))).transpose(1, 0, 2, 3)   # x as (C_in, N, 9, 9)
    kernel = g.transpose(1, 0, 2, 3)                                   # g as a kernel, taps 2 apart
    taps = sliding_window_view(xp, (7, 7), axis=(2, 3))[:, :, :, :, ::2, ::2]   # stride -> dilation
    np.testing.assert_allclose(np.einsum("cnabij,onij->ocab", taps, kernel), dw.data, rtol=1e-10, atol=1e-12)


def test_the_max_pool2d_rule_computes_what_max_pool2d_computes():
    """'route g to each window's first max (overlaps add)': windows of 3 every 2 overlap, and the
    small integers make ties, so both halves of the sentence are exercised."""
    rng = np.random.default_rng(3)
    x = tg.Tensor(rng.integers(0, 3, (2, 2, 7, 7)).astype(np.float64), requires_grad=True)
    y = F.max_pool2d(x, 3, stride=2)
    g = rng.standard_normal(y.shape)
    (dx,) = tg.grad(y, [x], grad_outputs=g)
    assert rule_of((y * g).sum(), "max_pool2d d/dx:") == "route g to each window's first max (overlaps add)"
    expected = np.zeros_like(x.data)
    for n, c, i, j in np.ndindex(y.shape):
        window = x.data[n, c, 2 * i:2 * i + 3, 2 * j:2 * j + 3]
        a, b = np.unravel_index(np.argmax(window), window.shape)           # argmax: the first maximum
        expected[n, c, 2 * i + a, 2 * j + b] += g[n, c, i, j]              # overlapping windows add up
    np.testing.assert_allclose(dx.data, expected)


# ---- step through backward ----------------------------------------------------------------------
def highlighted(graph):
    """The labels of the nodes drawn as the current step, and how many are shaded as done."""
    lines = graph.source.splitlines()
    now = [re.match(r"\s*(n\d+)", line).group(1) for line in lines if 'penwidth="3"' in line and "->" not in line]
    done = sum('fillcolor="#d9d9d9"' in line for line in lines if re.match(r"\s*n\d+ \[", line))
    labels = dot_nodes(graph)
    return [labels[n] for n in now], done


def test_steps_follow_the_engines_order_and_show_the_numbers():
    calls = []
    tag = tg.primitive(lambda x, name: x, "tag")
    tg.defvjp(tag, lambda g, ans, x, name: calls.append(name) or g, rules=lambda i, t: f"pass g on ({t.params['name']})")
    x = tg.Tensor(np.array([1.0, -2.0]), requires_grad=True, name="x")
    a = tag(x, name="a")
    b, c = tag(a, name="b"), tag(a * 3.0, name="c")
    loss = (b * c).sum()
    loss.backward()
    engine_order = list(calls)                # the engine's own order of the tag VJPs
    graph = tg.draw_graph(loss, step=1)
    shown = []
    done_before = -1
    for k in range(1, graph.steps + 1):
        frame = tg.draw_graph(loss, step=k)
        labels, done = highlighted(frame)
        assert labels and done > done_before  # one more node shaded each step
        done_before = done
        assert frame.captions[0].startswith(f"step {k} of {graph.steps}: ")
        shown += [re.search(r"\((\w)\)", label).group(1) for label in labels if label.startswith("tag d/dx")]
    assert shown == engine_order == ["c", "b", "a"]
    # the current nodes show the gradient they get (a is used twice: on the + node) and the one
    # they send, with signs
    signed = " ".join(f"{v:+.4g}" for v in x.grad.data)          # d/dx sum(x * 3x) = 6x
    assert signed == "+6 -12"
    frames = [highlighted(tg.draw_graph(loss, step=k))[0] for k in range(1, graph.steps + 1)]
    assert [f"+\n2 grads\n(2,)\ng [{signed}]", f"tag d/dx: pass g on (a)\nsends dx [{signed}]"] in frames
    last, _ = highlighted(tg.draw_graph(loss, step=graph.steps))
    assert last == [f"x.grad\n(2,) float64\n|g|={np.linalg.norm(x.grad.data):.4g}\ngrad [{' '.join(f'{v:+.4g}' for v in x.grad.data)}]"]
    with_values = tg.draw_graph(loss, step=graph.steps - 1, show_values=True).source
    assert with_values.count("sends dx [+6 -12]") == 1          # the step's numbers, not twice
    for bad in (0, graph.steps + 1, 1.5):
        with pytest.raises(ValueError, match=f"step must be a whole number from 1 to {graph.steps}"):
            tg.draw_graph(loss, step=bad)


def test_stepping_a_folded_graph_highlights_the_box_being_worked_on():
    out = deep_scoped_graph(blocks=3, layers=4)
    graph = tg.draw_graph(out.sum(), step=1, max_nodes=8)
    middle = tg.draw_graph(out.sum(), step=graph.steps // 2, max_nodes=8)
    labels, done = highlighted(middle)
    assert [label.split("\n")[0] for label in labels] == ["block1"] and done >= 2


# ---- escaping -----------------------------------------------------------------------------------
def test_names_and_scopes_with_dot_syntax_are_escaped_everywhere(tmp_path):
    """Quotes, <, >, braces and backslashes in tensor names, scope (cluster) labels and tooltips
    come out as written, in the DOT and in the picture."""
    w = tg.Tensor(np.ones(2, np.float32), requires_grad=True, name="w\\")
    c = tg.Tensor(np.ones(2, np.float32), requires_grad=True, name='a "quoted" {b} <c>')
    with tg.scope("<1<2>"):
        with tg.scope("<x>"):
            y = (w * c).exp()
        z = y.sum()
    def drawn(graph):                                     # dot or graphviz-pure: both must read it
        root = ET.fromstring(graph.pipe("svg"))
        return ({t.text for t in root.iter(f"{SVG}text")},
                {a.get("{http://www.w3.org/1999/xlink}title") for a in root.iter(f"{SVG}a")})

    for graph, names in ((tg.draw_graph(z), {"w\\", 'a "quoted" {b} <c>'}),
                         (tg.draw_graph(z, show_values=True), {"w\\", 'a "quoted" {b} <c>'}),
                         (tg.draw_graph(z, backward=True), {"w\\.grad", 'a "quoted" {b} <c>.grad'}),
                         (tg.draw_graph(z, step=2), {"w\\.grad", 'a "quoted" {b} <c>.grad'})):
        texts, tooltips = drawn(graph)
        assert {"<1<2>", "<x>"} | names <= texts            # cluster labels and node labels
        assert {"<1<2>", "<1<2>/<x>"} <= tooltips            # cluster and node tooltips
    texts, tooltips = drawn(tg.draw_graph(z, max_nodes=3))   # <x> collapsed into one box
    assert {"<1<2>", "<x>"} <= texts and "<1<2>/<x>" in tooltips
    assert 'label="w\\\\' in tg.draw_graph(z).source    # the backslash doubled, the quote after it kept
