"""DOT text to SVG/PNG/PDF bytes, and the Graph that draw_graph returns (files, Jupyter).

Two programs can draw our DOT, and both speak `dot`'s flags (DOT on stdin, `-T<format>`, the
picture on stdout):

- Graphviz's own `dot`, when it is on PATH (preferred: it is the reference, and it makes PDF);
- `graphviz-pure`, which pip installs with tinygrad_edu: a Rust port of Graphviz 16's `dot` with
  its fonts built in, so drawing works on a machine with no system packages. It makes SVG and PNG
  (line for line the SVG Graphviz 16.1 makes of our graphs), not PDF.

Either runs as a separate process, with a timeout: a layout that runs away (tens of thousands of
unfolded nodes) must not hang a notebook, and a crash cannot take the kernel with it.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import graphviz

__all__ = ["Graph", "render", "engine", "RenderError", "GraphvizNotFoundError", "FormatNeedsGraphvizError"]

# what graphviz-pure writes; PDF and PS need Graphviz's cairo/ps renderers
PURE_FORMATS = {"svg", "png", "jpg", "jpeg", "jpe", "dot", "gv", "xdot", "plain", "plain-ext", "json", "canon"}
INSTALL_GRAPHVIZ = ("install Graphviz (`apt-get install graphviz`, `brew install graphviz`, "
                    "`conda install -c conda-forge graphviz`, or https://graphviz.org/download/)")
TIMEOUT_S = 120


class RenderError(RuntimeError):
    """Drawing failed (bad DOT, out of time, no renderer); the message is one line saying why."""


class GraphvizNotFoundError(RenderError, graphviz.ExecutableNotFound):
    """No program can make the picture asked for; the message says what to install.

    A subclass of graphviz.ExecutableNotFound, so code that already catches that keeps working."""

    def __init__(self, message):
        RuntimeError.__init__(self, message)   # ExecutableNotFound's own __init__ formats its own text


class FormatNeedsGraphvizError(GraphvizNotFoundError):
    """The format (PDF, say) needs the system Graphviz program `dot`, which is not on PATH."""


# --------------------------------------------------------------------------------------------
# Finding a program
# --------------------------------------------------------------------------------------------
def _system_dot():
    return shutil.which("dot")


def _pure_program():
    """graphviz-pure's path. pip puts it in the environment's scripts folder, which is not on PATH
    when a venv's python (or a Jupyter kernel) runs without the venv being activated, so that
    folder is looked in too, and the user-install one."""
    found = shutil.which("graphviz-pure")
    if found:
        return found
    names = ["graphviz-pure.exe", "graphviz-pure"] if os.name == "nt" else ["graphviz-pure"]
    folders = [sysconfig.get_path("scripts"), os.path.dirname(sys.executable)]
    try:
        folders.append(sysconfig.get_path("scripts", f"{os.name}_user"))
    except KeyError:
        pass
    for folder in folders:
        for name in names:
            path = os.path.join(folder or "", name)
            if os.path.isfile(path) and os.access(path, os.X_OK):
                return path
    return None


def engine():
    """Which program renders: 'dot' (the system Graphviz, preferred), 'graphviz-pure', or 'none'."""
    if _system_dot():
        return "dot"
    return "graphviz-pure" if _pure_program() else "none"


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
def render(dot_source: str, fmt: str = "svg", timeout: float = TIMEOUT_S) -> bytes:
    """The drawing of `dot_source` in format `fmt` ('svg', 'png', 'pdf', ...), as bytes.

    Raises GraphvizNotFoundError (nothing can draw it: the message says what to install) or
    RenderError (the program failed or ran out of time), each with a one-line message."""
    fmt = fmt.lower().lstrip(".")
    program = _system_dot()
    if program is None:
        program = _pure_program()
        if program is None:
            raise GraphvizNotFoundError(
                "cannot draw the graph: neither Graphviz's `dot` nor `graphviz-pure` was found; "
                f"`pip install graphviz-pure` (a tinygrad_edu dependency) or {INSTALL_GRAPHVIZ}. "
                "The DOT text (`graph.source`) needs neither")
        if fmt not in PURE_FORMATS:
            raise FormatNeedsGraphvizError(
                f"{fmt.upper()} needs the Graphviz program `dot`, which is not on PATH (SVG and PNG "
                f"work without it): {INSTALL_GRAPHVIZ}")
    name = os.path.basename(program)
    try:
        done = subprocess.run([program, f"-T{fmt}"], input=dot_source.encode("utf-8"),
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RenderError(f"{name} did not finish drawing in {timeout:g} s; draw fewer nodes "
                          f"(draw_graph(..., max_nodes=200) folds scopes)") from None
    if done.returncode != 0 or not done.stdout:
        # warnings come first on stderr (e.g. about non-ASCII widths); the error line is the news
        lines = [ln for ln in done.stderr.decode("utf-8", "replace").splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()] or lines or [f"exit status {done.returncode}"]
        raise RenderError(f"{name} failed to make {fmt.upper()}: {errors[0].strip()}")
    return done.stdout


# --------------------------------------------------------------------------------------------
# The Graph draw_graph returns
# --------------------------------------------------------------------------------------------
class Graph(graphviz.Digraph):
    """A graphviz.Digraph whose drawing goes through `render` above: `.pipe(format)`,
    `.render(path, format=...)` and Jupyter's inline display work with the system `dot` or,
    without it, with graphviz-pure. `.source` is the DOT text, as for any Digraph."""

    captions = ()   # draw_graph sets: the caption lines (counts, folding notes)
    steps = None    # backward graphs: how many steps backward takes (draw_graph(..., step=k))
    step_names = ()  # ... and what it does in each

    def pipe(self, format=None, renderer=None, formatter=None, neato_no_op=None, quiet=False, *,
             engine=None, encoding=None):
        if (renderer or formatter or neato_no_op or engine) and _system_dot():
            return super().pipe(format, renderer, formatter, neato_no_op, quiet, engine=engine, encoding=encoding)
        data = render(self.source, format or self.format)
        return data.decode(encoding) if encoding else data

    def render(self, filename=None, directory=None, view=False, cleanup=False, format=None, renderer=None,
               formatter=None, neato_no_op=None, quiet=False, quiet_view=False, *, outfile=None, engine=None,
               raise_if_result_exists=False, overwrite_source=False):
        """Write the DOT source to `filename` (in `directory`) and the drawing beside it as
        `<filename>.<format>` (or to `outfile`); returns the drawing's path. cleanup=True removes
        the source file afterwards."""
        if outfile is not None:
            outfile = Path(outfile)
            format = format or outfile.suffix.lstrip(".") or self.format
            if filename is None and directory is None:
                filename = outfile.with_suffix(".gv")
        format = format or self.format
        source_path = Path(self.save(filename, directory=directory))
        out = Path(outfile) if outfile is not None else source_path.with_name(f"{source_path.name}.{format}")
        if raise_if_result_exists and out.exists():
            raise FileExistsError(f"output file exists: {out}")
        out.write_bytes(self.pipe(format, renderer, formatter, neato_no_op, quiet, engine=engine))
        if cleanup:
            source_path.unlink()
        if view:
            self._view(out, format=format, quiet=quiet_view)
        return str(out)

    def unflatten(self, *args, **kwargs):
        try:
            return super().unflatten(*args, **kwargs)
        except graphviz.ExecutableNotFound:
            raise GraphvizNotFoundError(f"unflatten is a Graphviz program, not on PATH: {INSTALL_GRAPHVIZ}") from None

    # ---- Jupyter: an SVG, or one line saying why there is none (never a traceback) -------------
    def _repr_mimebundle_(self, include=None, exclude=None, **_):
        try:
            return {"image/svg+xml": self._repr_image_svg_xml()}
        except RenderError as error:
            return {"text/plain": f"draw_graph: {error}"}

    def _repr_svg_(self):
        try:
            return self._repr_image_svg_xml()
        except RenderError:
            return None

    def _repr_image_svg_xml(self):
        return render(self.source, "svg").decode("utf-8")

    def _repr_image_png(self):
        return render(self.source, "png")

    def _repr_image_jpeg(self):
        return render(self.source, "jpeg")
