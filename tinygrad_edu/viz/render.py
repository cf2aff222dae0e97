"""Rendering DOT text to SVG/PNG/PDF with Graphviz's `dot`, and showing graphs in Jupyter."""
import graphviz

__all__ = ["Graph", "GraphvizNotFoundError"]

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
