"""Drawing the recorded graph, in three steps, one module each (and a fourth for stepping):

    graph.py    the walk over the graph (forward or backward), names, VJP rule texts, folding
    dot.py      DOT text: labels, colours, scope boxes, legend; short forms of shapes and values
    render.py   DOT to SVG/PNG/PDF (Graphviz's `dot`, else the pip-installed `graphviz-pure`),
                the Graph draw_graph returns, and Jupyter's inline display
    steps.py    stepping through backward: one frame per step, and an HTML page to flip them
"""
from .graph import draw_graph  # noqa: F401
from .render import GraphvizNotFoundError, RenderError  # noqa: F401
from .steps import write_steps  # noqa: F401
