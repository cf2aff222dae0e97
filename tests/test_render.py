"""Rendering: Graphviz's `dot` when it is on PATH, else graphviz-pure (installed by pip with the
package), else one line saying what to install; the same for pipe/render, the CLI and Jupyter.

The `no_dot` tests hide `dot` (PATH is an empty folder) and so run the fallback wherever they run;
the `needs_dot` ones run the same checks through the system binary where it is installed (CI
installs it after a first full run without it)."""
import os
import shutil
import stat
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_edu as tg
from tinygrad_edu import models
from tinygrad_edu.viz import render as rendering
from tinygrad_edu.viz import write_steps

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
SVG = "{http://www.w3.org/2000/svg}"
CHROMIUM = shutil.which("chromium")


@pytest.fixture
def no_dot(monkeypatch, tmp_path):
    """PATH as on a machine without Graphviz: only an empty folder. graphviz-pure is still found,
    in the environment's scripts folder (as from an unactivated venv or a Jupyter kernel)."""
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert rendering.engine() == "graphviz-pure"


def seed_loss(batch=2):
    params = models.init_params("seed", rng=0)
    x = tg.Tensor(np.random.default_rng(1).random((batch, 1, 28, 28), dtype=np.float32), name="images")
    loss = models.loss_fn(params, x, tg.Tensor(np.arange(batch), name="labels"))
    loss.name = "loss"
    return loss


def svg_texts(svg_bytes):
    """Every text line the SVG draws (Graphviz writes a double space as ' &#160;': back to '  ')."""
    root = ET.fromstring(svg_bytes)
    assert root.tag == f"{SVG}svg"
    return [(t.text or "").replace("\xa0", " ") for t in root.iter(f"{SVG}text")]


def png_size(png):
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", png[16:24])


def graphs():
    """Forward, backward, folded and stepped graphs of the seed model, with labels each must show."""
    loss = seed_loss()
    loss.backward()
    return {
        "forward": (tg.draw_graph(loss), ["conv1.weight", "images", "labels", "conv2d stride=1 pad=0"]),
        "backward": (tg.draw_graph(loss, backward=True),
                     ["seed: dloss/dloss = 1", "conv2.weight.grad", "max_pool2d d/dx: route g to each window's first max (overlaps add)"]),
        "folded": (tg.draw_graph(loss, backward=True, max_nodes=12), ["conv1", "nodes folded"]),
        "stepped": (tg.draw_graph(loss, step=4), ["step 4 of 23: matmul (in fc2) applies its VJPs d/dx, d/dy",
                                                  "matmul d/dy: x^T @ g"]),
        "values": (tg.draw_graph(loss, show_values=True), ["images", "value min +0"]),
    }


def check_svg_and_png(graph, labels):
    texts = svg_texts(graph.pipe("svg"))
    for label in labels:
        assert any(label in text for text in texts), f"{label!r} not drawn; texts: {texts[:40]}"
    width, height = png_size(graph.pipe("png"))
    assert width > 200 and height > 200


# ---- the fallback ------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["forward", "backward", "folded", "stepped", "values"])
def test_svg_and_png_through_graphviz_pure(no_dot, kind):
    graph, labels = graphs()[kind]
    check_svg_and_png(graph, labels)


def test_render_to_files_and_jupyter_hooks_through_graphviz_pure(no_dot, tmp_path):
    graph = tg.draw_graph(seed_loss(), backward=True)
    svg_path = graph.render(tmp_path / "seed", format="svg", cleanup=True)
    png_path = graph.render(outfile=tmp_path / "out" / "seed.png")
    assert svg_path.endswith("seed.svg") and open(svg_path).read().lstrip().startswith("<?xml")
    assert png_size(open(png_path, "rb").read())[1] > 1000
    assert not (tmp_path / "seed").exists()                 # cleanup=True removed the DOT source
    bundle = graph._repr_mimebundle_()                       # what Jupyter calls to show it inline
    assert list(bundle) == ["image/svg+xml"] and "<svg" in bundle["image/svg+xml"]
    assert "conv2.weight.grad" in graph._repr_svg_()
    assert graph.pipe().startswith(b"<?xml")                 # the default format is SVG


def test_pdf_without_dot_is_one_line_saying_what_to_install(no_dot, tmp_path):
    graph = tg.draw_graph(seed_loss())
    with pytest.raises(rendering.FormatNeedsGraphvizError,
                       match=r"PDF needs the Graphviz program `dot`.*\(SVG and PNG work without it\).*apt-get install graphviz"):
        graph.pipe("pdf")
    result = subprocess.run([sys.executable, "-m", "tinygrad_edu", "graph", "--out", "g.pdf"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("tinygrad-edu: error: graph: PDF needs")


def test_bad_dot_is_one_clear_line(no_dot):
    with pytest.raises(rendering.RenderError, match="graphviz-pure failed to make SVG") as info:
        rendering.render("digraph { a -> ", "svg")
    assert "\n" not in str(info.value)


def test_system_dot_is_preferred_and_a_runaway_render_times_out(monkeypatch, tmp_path):
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\ncat >/dev/null\necho from-system-dot \"$1\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert rendering.engine() == "dot"
    assert rendering.render("digraph{a}", "pdf") == b"from-system-dot -Tpdf\n"
    fake.write_text(f"#!{sys.executable}\nimport time\ntime.sleep(30)\n")
    with pytest.raises(rendering.RenderError, match="did not finish drawing in 0.5 s; draw fewer nodes"):
        rendering.render("digraph{a}", "svg", timeout=0.5)


def test_no_renderer_at_all_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(rendering, "_pure_program", lambda: None)
    assert rendering.engine() == "none"
    with pytest.raises(rendering.GraphvizNotFoundError, match="pip install graphviz-pure"):
        rendering.render("digraph{a}", "svg")


def test_step_frames_and_their_page_through_graphviz_pure(no_dot, tmp_path):
    loss = seed_loss(batch=1)
    paths = write_steps(loss, tmp_path / "steps")
    frames = sorted((tmp_path / "steps").glob("step_*.svg"))
    assert len(frames) == 23 == len(paths) - 1 == tg.draw_graph(loss, backward=True).steps
    assert "step 23 of 23: conv1.weight.grad receives its gradient" in svg_texts(frames[-1].read_bytes())
    page = paths[-1].read_text()
    # self-contained: every frame inline, no file, script or style fetched from anywhere
    assert page.count("<svg") == 23 and "<?xml" not in page
    assert "src=" not in page and "<link" not in page and "http://" not in page.replace(
        'xmlns="http://www.w3.org/2000/svg"', "").replace('xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    assert "ArrowRight" in page and "ArrowLeft" in page


@pytest.mark.skipif(CHROMIUM is None, reason="no headless chromium to open the page with")
def test_the_step_page_steps_with_the_arrow_keys_from_disk(no_dot, tmp_path):
    x = tg.Tensor(np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3), requires_grad=True, name="x")
    loss = tg.functional.conv2d(x, tg.Tensor(np.ones((1, 1, 2, 2), np.float32), requires_grad=True, name="w")).sum()
    page = write_steps(loss, tmp_path)[-1]
    keys = '["ArrowRight", "ArrowRight", "ArrowRight", "ArrowRight", "ArrowLeft"]'
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text().replace("</body>", f"""<script>
for (const key of {keys}) document.dispatchEvent(new KeyboardEvent("keydown", {{key}}));
document.body.dataset.probe = [...document.querySelectorAll(".frame")].map(f => f.hidden ? "-" : "S").join("")
  + " " + document.getElementById("counter").textContent;
</script></body>"""))
    dom = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          probe.as_uri()], capture_output=True, text=True, timeout=60).stdout
    assert 'data-probe="--S- step 3 of 4:' in dom        # to the last of 4 steps (then it stays), one back


def test_png_frames(no_dot, tmp_path):
    x = tg.Tensor(np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3), requires_grad=True, name="x")
    loss = tg.functional.conv2d(x, tg.Tensor(np.ones((1, 1, 2, 2), np.float32), name="w")).sum()
    write_steps(loss, tmp_path, fmt="png")
    assert [p.name for p in sorted(tmp_path.glob("step_*.png"))] == ["step_001.png", "step_002.png", "step_003.png"]
    assert png_size((tmp_path / "step_002.png").read_bytes())[1] > 100


def test_cli_steps_and_values_without_dot(tmp_path):
    (tmp_path / "empty").mkdir()
    env = dict(os.environ, PATH=str(tmp_path / "empty"))
    result = subprocess.run([sys.executable, "-m", "tinygrad_edu", "graph", "--backward", "--batch", "1",
                             "--steps", "frames", "--values", "--out", "g.png"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "wrote 23 frames of backward" in result.stdout and "wrote g.png" in result.stdout
    assert (tmp_path / "frames" / "index.html").exists() and png_size((tmp_path / "g.png").read_bytes())[1] > 1000


def test_a_ten_thousand_op_graph_renders_folded(no_dot):
    """100 scope boxes sharing one weight and two constants: each shared node keeps one edge and
    is drawn again beside the other boxes, else the layout takes minutes (see viz.dot._split_hubs)."""
    w = tg.Tensor(np.eye(4, dtype=np.float32), requires_grad=True, name="w")
    h = tg.Tensor(np.ones((2, 4), np.float32), name="x")
    for block in range(100):
        with tg.scope(f"block{block}"):
            for _ in range(25):
                h = ((h @ w) * 0.5).tanh() + 1.0
    for graph in (tg.draw_graph(h), tg.draw_graph(h, backward=True)):
        texts = svg_texts(rendering.render(graph.source, "svg", timeout=30))
        assert sum(text == f"block{k}" for text in texts for k in range(100)) == 100
        assert texts.count("(drawn again)") == 99 * (3 if graph.name == "forward" else 1)


# ---- the system binary, where installed ----------------------------------------------------------
@needs_dot
@pytest.mark.parametrize("kind", ["forward", "backward", "folded", "stepped", "values"])
def test_svg_and_png_through_the_system_dot(kind):
    assert rendering.engine() == "dot"
    graph, labels = graphs()[kind]
    check_svg_and_png(graph, labels)


@needs_dot
def test_pdf_and_jupyter_through_the_system_dot(tmp_path):
    graph = tg.draw_graph(seed_loss(), backward=True)
    assert graph.pipe("pdf").startswith(b"%PDF")
    assert "<svg" in graph._repr_mimebundle_()["image/svg+xml"]
    frames = write_steps(seed_loss(batch=1), tmp_path / "steps")
    assert len(frames) == 24
