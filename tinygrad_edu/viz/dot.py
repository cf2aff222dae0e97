"""Step 3 of drawing (see viz.graph): plain nodes and edges as DOT text, with labels, colours,
nested scope boxes and a legend; and the short text forms of shapes, parameters and values that
labels (and tinygrad_edu.summary) use."""
import collections
import html

import graphviz
import numpy as np

from .render import Graph

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
