"""Stepping through backward: one picture per step, in the order the engine visits the tensors,
and one HTML page that flips through them with the arrow keys.

The page is a single file with every frame's SVG inside it and a few lines of JavaScript: no
server, no network, nothing else to copy; it works when opened straight from disk.
"""
from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

from .graph import DEFAULT_MAX_NODES, step_frames
from .render import render

__all__ = ["write_steps", "MAX_STEPS"]

MAX_STEPS = 500   # a frame per step: beyond this, a page of frames stops being a way to read it


def write_steps(root, directory, *, rankdir="TB", max_nodes=DEFAULT_MAX_NODES, fmt="svg"):
    """Write step_001.svg, step_002.svg, ... (one frame per step of backward from `root`, as
    draw_graph(root, step=k) draws it) and index.html, which shows them one at a time: the right
    and left arrow keys (or the buttons) step forward and back. fmt="png" writes PNG frames too
    (the page always inlines SVG). Returns the paths written: the SVG frames, then index.html."""
    if fmt not in ("svg", "png"):                   # before the graph is walked and replayed
        raise ValueError(f"write_steps: fmt must be 'svg' or 'png', got {fmt!r}")
    directory = Path(directory)
    frames = step_frames(root, rankdir=rankdir, max_nodes=max_nodes)
    first = next(frames)
    if first.steps > MAX_STEPS:
        raise ValueError(f"write_steps: backward here takes {first.steps} steps, more than {MAX_STEPS} "
                         f"frames; draw a smaller graph (the steps are one per tensor backward visits)")
    directory.mkdir(parents=True, exist_ok=True)
    svgs, names, paths = [], first.step_names, []
    for k, graph in enumerate(itertools.chain([first], frames), 1):
        svg = render(graph.source, "svg")
        paths.append(directory / f"step_{k:03d}.svg")
        paths[-1].write_bytes(svg)
        if fmt == "png":
            (directory / f"step_{k:03d}.png").write_bytes(render(graph.source, "png"))
        svgs.append(svg.decode("utf-8"))
    page = directory / "index.html"
    page.write_text(step_page(svgs, names), encoding="utf-8")
    return paths + [page]


_PROLOGUE = re.compile(r"^\s*(<\?xml[^>]*\?>\s*)?(<!DOCTYPE[^>]*>\s*)?(<!--.*?-->\s*)*", re.S)


def step_page(svgs, names):
    """The HTML page: every frame inlined, one shown at a time."""
    frames = "\n".join(f'<figure class="frame" id="step{k}"{"" if k == 1 else " hidden"}>'
                       f"{_PROLOGUE.sub('', svg)}</figure>" for k, svg in enumerate(svgs, 1))
    titles = json.dumps(list(names)).replace("<", "\\u003c")   # no '</script>' can end the script early
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>backward, step by step</title>
<style>
body {{ font-family: Helvetica, Arial, sans-serif; margin: 1em; }}
header {{ position: sticky; top: 0; background: #fff; padding: .4em 0; border-bottom: 1px solid #ccc; }}
figure {{ margin: 1em 0; }}
figure svg {{ max-width: 100%; height: auto; }}
button {{ font-size: 1em; }}
</style></head>
<body>
<header>
<button id="prev" title="left arrow">&larr; back</button>
<button id="next" title="right arrow">forward &rarr;</button>
<strong id="counter"></strong> <span id="what"></span>
<div><small>Backward, one step per tensor in the order the engine visits them: the highlighted
nodes are this step (the rule applied, the gradient received, the gradients sent), the shaded ones
are done. Keys: &larr; &rarr; (Home, End).</small></div>
</header>
{frames}
<script>
const titles = {titles};
const frames = document.querySelectorAll(".frame");
let current = 0;
function show(k) {{
  current = Math.max(0, Math.min(frames.length - 1, k));
  frames.forEach((f, i) => {{ f.hidden = i !== current; }});
  document.getElementById("counter").textContent = "step " + (current + 1) + " of " + frames.length + ":";
  document.getElementById("what").textContent = titles[current] || "";
}}
document.addEventListener("keydown", (e) => {{
  if (e.key === "ArrowRight" || e.key === "ArrowDown" || e.key === " ") {{ show(current + 1); e.preventDefault(); }}
  else if (e.key === "ArrowLeft" || e.key === "ArrowUp") {{ show(current - 1); e.preventDefault(); }}
  else if (e.key === "Home") show(0);
  else if (e.key === "End") show(frames.length - 1);
}});
document.getElementById("prev").onclick = () => show(current - 1);
document.getElementById("next").onclick = () => show(current + 1);
show(0);
</script>
</body></html>
"""
