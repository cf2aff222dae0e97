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


VALUES_IN_FULL = 16   # a tensor with up to this many numbers shows them all; a bigger one, statistics


def format_values(data, what="value"):
    """A tensor's numbers as label lines, each with its sign, so that a learner sees at a glance
    which way a value or a gradient points: all of them when there are at most VALUES_IN_FULL
    (a matrix row by row), else min / mean / max and the fraction of exact zeros (a dead ReLU's
    zeros, an exploding gradient's max)."""
    a = np.asarray(data)
    if a.dtype.kind not in "biuf":
        return [f"{what} ({a.dtype.name})"]
    if a.size <= VALUES_IN_FULL:
        if a.ndim >= 2 and 1 < a.shape[-1] < a.size:
            rows = a.reshape(-1, a.shape[-1])
            return [f"{what} [{_signed_row(rows[0])}]"] + [f"[{_signed_row(r)}]" for r in rows[1:]]
        return [f"{what} " + (_signed_row(a.ravel()) if a.ndim == 0 else f"[{_signed_row(a.ravel())}]")]
    f = a.astype(np.float64)
    return [f"{what} min {_signed(f.min())}  mean {_signed(f.mean())}  max {_signed(f.max())}",
            f"{what}: {np.count_nonzero(f == 0) / f.size:.0%} zeros (of {f.size})"]


def _signed(v):
    """+0.5, -1.25, +3, +0: the sign always written (never -0)."""
    return f"{float(v) + 0.0:+.4g}"


def _signed_row(values):
    return " ".join(_signed(v) for v in values)


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
    # the states of a node in a step of backward (draw_graph(..., step=k)), over its kind's style
    "done": ("done (earlier steps)", dict(fillcolor="#d9d9d9", color="#999999", fontcolor="#555555")),
    "now": ("this step", dict(fillcolor="#ffe599", color="#cc0000", penwidth="3")),
}
_LEGEND = {False: ("param", "input", "op", "output"), True: ("seed", "vjp", "accumulate", "grad")}
# label lines that carry numbers: (role, text); values and gradients each have a colour
_ROLE_COLOURS = {"value": ("#1c4587", "value: the data"), "grad": ("#b00000", "grad / g: a gradient")}


def quote(text):
    """`text` as a DOT double-quoted string that Graphviz reads back as exactly `text`: quotes and
    backslashes escaped (a name ending in a backslash must not swallow the closing quote), and a
    string like '<x>' stays text rather than becoming an HTML label."""
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _attributes(attrs):
    return " ".join(f"{key}={quote(value)}" for key, value in attrs.items())


def _label(lines):
    """Plain text lines as a quoted label; lines with a role (value or grad numbers) make an
    HTML-like label instead, so those lines can have their colour."""
    if all(isinstance(line, str) for line in lines):
        return quote("\n".join(lines))
    parts = []
    for line in lines:
        role, text = line if isinstance(line, tuple) else (None, line)
        text = html.escape(text)
        parts.append(f'<font color="{_ROLE_COLOURS[role][0]}">{text}</font>' if role else text)
    return "<" + "<br/>".join(parts) + ">"


def state_of(node, step):
    """In step `step` of backward: 'done' (an earlier step), 'now', or None (to come)."""
    if step is None or node.steps is None:
        return None
    first, last = node.steps
    return "done" if last < step else "now" if first <= step else None


def _emit(nodes, edges, captions, rankdir, legend, backward, step=None, show_values=False):
    """The Graph (a graphviz.Digraph) of plain nodes and edges. The body is written line by line
    here (quote() above), not through graphviz's own quoting, which leaves a trailing backslash
    and '<x>'-like names unescaped."""
    kinds = _LEGEND[backward] + tuple(k for k in ("scope", "folded") if any(n.kind == k for n in nodes))
    if step is not None:
        kinds += ("done", "now")
    roles = {line[0] for node in nodes for line in _shown_lines(node, step, show_values) if isinstance(line, tuple)}
    graph = Graph(name="backward" if backward else "forward", format="svg",
                  # newrank: rank the whole graph at once, so the invisible edges that stack
                  # scope boxes (_stack_scope_boxes) hold across boxes too
                  graph_attr=dict(rankdir=rankdir, label=_caption(captions, kinds if legend else (), roles),
                                  labelloc="b", newrank="true", fontname="Helvetica", fontsize="10"),
                  node_attr=dict(style="filled", fontname="Helvetica", fontsize="10"),
                  edge_attr=dict(fontname="Helvetica", fontsize="9"))
    drawn_edges, stubs = _split_hubs(nodes, edges)
    # scope boxes: each scope path and each of its parents, nested, in the order first met
    children, members = collections.defaultdict(list), collections.defaultdict(list)
    stubs_in = collections.defaultdict(list)
    known = {}
    for i, node in enumerate(nodes):
        members[node.scope].append(i)
    for k, (hub, scope, n_edges) in enumerate(stubs):
        stubs_in[scope].append((k, hub, n_edges))
    for scope in list(members) + list(stubs_in):
        while scope and scope not in known:
            known[scope] = f"cluster_{len(known)}"
            parent = scope.rsplit("/", 1)[0] if "/" in scope else None
            children[parent].append(scope)
            scope = parent
    for parent in children:                      # keep first-met order, parents before children
        children[parent].sort(key=list(known).index)
    body = graph.body
    stack = [(None, 0)]                          # (scope, depth): no recursion, however deep
    while stack:
        scope, depth = stack.pop()
        if scope == "}":
            body.append("\t" * depth + "}\n")
            continue
        indent = "\t" * (depth + 1)
        if scope is not None:
            body.append("\t" * depth + f"subgraph {known[scope]} {{\n")
            body.append(indent + "graph [" + _attributes(dict(
                color="#888888", fontname="Helvetica", fontsize="10", label=scope.rsplit("/", 1)[-1],
                style="rounded,dashed", tooltip=scope)) + "]\n")
        for i in members.get(scope, ()):
            body.append(indent + f"n{i} [label={_label(_shown_lines(nodes[i], step, show_values))} "
                        + _attributes(_node_attributes(nodes[i], step)) + "]\n")
        for k, hub, n_edges in stubs_in.get(scope, ()):
            attributes = _node_attributes(nodes[hub], step)
            attributes.update(style="filled,dashed", tooltip=f"the node n{hub} again ({n_edges} edges)")
            attributes.pop("group", None)
            body.append(indent + f"s{k} [label={quote(nodes[hub].lines[0] + chr(10) + '(drawn again)')} "
                        + _attributes(attributes) + "]\n")
        if scope is not None:
            stack.append(("}", depth))
        stack.extend((child, depth + 1) for child in reversed(children[scope]))
    for s, d, label, main in drawn_edges:
        body.append(f"\t{s} -> {d} [label={quote(label)} weight={10 if main else 1}]\n")
    _stack_scope_boxes(body, nodes, edges)
    graph.captions = captions
    return graph


HUB_EDGES = 8   # a node with more edges is drawn again beside each extra one


def _split_hubs(nodes, edges):
    """The edges as (source name, target name, label, main), where a node with more than
    HUB_EDGES edges on one side (out of a shared leaf, into a + node) keeps the first of those
    and is drawn again (a dashed copy, in the other end's scope box) for each of the others. A constant or a weight shared by 100 layers would
    otherwise pull 100 edges across the whole height of the layout, and Graphviz's crossing
    minimisation on those long edges takes minutes (the folded 10,000-op graph: over a minute;
    with the copies, a fraction of a second)."""
    degree = collections.Counter()        # (node, 0): edges out of it; (node, 1): edges into it
    for s, d, _ in edges:
        degree[s, 0] += 1
        degree[d, 1] += 1
    hubs = {key for key, n in degree.items() if n > HUB_EDGES and nodes[key[0]].kind not in ("scope", "folded")}
    drawn, stubs, kept = [], [], set()
    for s, d, label in edges:
        # the data's path pulls harder than the side branches to and from the parameters, so
        # Graphviz keeps it straight instead of drifting sideways layer by layer
        main = nodes[s].main and nodes[d].main
        names = [f"n{s}", f"n{d}"]
        for end, (hub, other) in enumerate(((s, d), (d, s))):
            if (hub, end) not in hubs:
                continue
            if (hub, end) not in kept:
                kept.add((hub, end))                      # the hub's first edge stays
                continue
            names[end] = f"s{len(stubs)}"
            stubs.append((hub, nodes[other].scope, degree[hub, end]))
            main = False
        drawn.append((names[0], names[1], label, main))
    return drawn, stubs


def _shown_lines(node, step, show_values):
    if node.step_lines and state_of(node, step) == "now":
        return node.lines + node.step_lines     # the step's numbers (they include the values)
    return node.lines + node.values if show_values else list(node.lines)


def _node_attributes(node, step):
    attributes = dict(_STYLES[node.kind][1])
    state = state_of(node, step)
    if state:
        attributes.update(_STYLES[state][1])
    if node.tooltip:
        attributes["tooltip"] = node.tooltip
    if node.main:
        attributes["group"] = "main"   # Graphviz keeps the edges within a group straight
    return attributes


def _stack_scope_boxes(body, nodes, edges):
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
                    body.append(f"\tn{i} -> n{j} [style=invis]\n")


def _caption(captions, kinds, roles=()):
    """The text under the graph, with the legend as a row of coloured cells. An HTML-like label
    rather than legend nodes: the graph's nodes stay exactly its ops and tensors."""
    if not kinds:
        return graphviz.nohtml("\n".join(captions).replace("\\", "\\\\"))
    cells = "".join(f'<td bgcolor="{_STYLES[k][1]["fillcolor"]}" border="1">{html.escape(_STYLES[k][0])}</td>'
                    for k in kinds)
    cells += "".join(f'<td border="1"><font color="{_ROLE_COLOURS[r][0]}">{html.escape(_ROLE_COLOURS[r][1])}</font></td>'
                     for r in ("value", "grad") if r in roles)
    width = len(kinds) + sum(r in roles for r in ("value", "grad"))
    rows = "".join(f'<tr><td colspan="{width}">{html.escape(c)}</td></tr>' for c in captions)
    return f'<<table border="0" cellspacing="4" cellpadding="4"><tr>{cells}</tr>{rows}</table>>'
