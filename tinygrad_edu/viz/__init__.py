"""Drawing the recorded graph, in three steps, one module each:

    graph.py    the walk over the graph (forward or backward), names, VJP rule texts, folding
    dot.py      DOT text: labels, colours, scope boxes, legend; short forms of shapes and values
    render.py   DOT to SVG/PNG/PDF (Graphviz's `dot`), and Jupyter's inline display
"""
from .graph import draw_graph  # noqa: F401
from .render import GraphvizNotFoundError  # noqa: F401
