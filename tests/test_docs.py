"""The docs cannot rot: every code block of docs/conv-backprop.md (and docs/mistakes.md) runs here.

- ```python blocks run in order, in one namespace, as a reader would run them;
- ```text blocks show printed output: each must appear, line for line, in what the python blocks
  before it printed;
- ```console blocks hold `$ tinygrad-edu ...` commands: each runs through the real command line
  (`python -m tinygrad_edu`) and must succeed.
"""
import contextlib
import io
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys

import pytest

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"
TUTORIAL = DOCS / "conv-backprop.md"
FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path):
    return [(kind, body) for kind, body in FENCE.findall(path.read_text())]


def normalise(text):
    return [line.rstrip() for line in text.strip().splitlines()]


def test_the_tutorial_has_every_kind_of_block():
    kinds = [kind for kind, _ in blocks(TUTORIAL)]
    assert kinds.count("python") >= 20 and "text" in kinds and "console" in kinds


def run_python_and_text_blocks(page):
    """Run a page's python blocks in order in one namespace; each text block must appear, line
    for line, in what the python blocks before it printed."""
    namespace = {"__name__": page.stem}
    printed = io.StringIO()
    for number, (kind, body) in enumerate(blocks(page), 1):
        if kind == "python":
            with contextlib.redirect_stdout(printed):
                try:
                    exec(compile(body, f"{page.name} block {number}", "exec"), namespace)
                except Exception as error:
                    pytest.fail(f"block {number} of {page.name} failed: {error!r}\n{body}")
        elif kind == "text":
            shown, output = normalise(body), normalise(printed.getvalue())
            starts = [i for i, line in enumerate(output) if line == shown[0]]
            assert any(output[i:i + len(shown)] == shown for i in starts), \
                f"text block {number} of {page.name} is not what the code before it prints:\n{body}"


def test_python_blocks_run_in_order_and_text_blocks_match_their_output(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # anything a block writes lands here
    run_python_and_text_blocks(TUTORIAL)


def test_the_mistakes_page_shows_the_errors_word_for_word(tmp_path, monkeypatch):
    """docs/mistakes.md: every python block runs, every printed error is the one the page shows."""
    monkeypatch.chdir(tmp_path)
    page = DOCS / "mistakes.md"
    kinds = [kind for kind, _ in blocks(page)]
    assert kinds.count("python") >= 10 and kinds.count("text") >= 10
    run_python_and_text_blocks(page)


def test_console_blocks_run_through_the_command_line(tmp_path):
    commands = [line[2:] for kind, body in blocks(TUTORIAL) if kind == "console"
                for line in body.splitlines() if line.startswith("$ ")]
    assert commands
    for command in commands:
        argv = shlex.split(command)
        assert argv[0] == "tinygrad-edu"
        result = subprocess.run([sys.executable, "-m", "tinygrad_edu"] + argv[1:], cwd=tmp_path,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"`{command}` failed:\n{result.stdout}\n{result.stderr}"
        for word in argv:
            if word.endswith((".svg", ".png")):
                assert (tmp_path / word).stat().st_size > 1000


def test_the_pictures_the_docs_show_exist():
    for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", TUTORIAL.read_text()):
        path = DOCS / image
        assert path.exists(), f"{TUTORIAL.name} shows {image}, which is missing"
        assert path.read_text().lstrip().startswith("<?xml") if path.suffix == ".svg" else path.stat().st_size


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    readme = DOCS.parent / "README.md"
    namespace = {"__name__": "readme"}
    python_blocks = [body for kind, body in blocks(readme) if kind == "python"]
    assert python_blocks
    with contextlib.redirect_stdout(io.StringIO()):
        for number, body in enumerate(python_blocks, 1):
            exec(compile(body, f"README.md python block {number}", "exec"), namespace)
    assert namespace["w"].grad.shape == (6, 3, 5, 5)


# ---- drawing: the step-through page, and the drawing commands with and without Graphviz's dot --
STEP_THROUGH = DOCS / "backward-step-through.md"
DRAWING_COMMANDS = ("graph", "summary", "explain")


def test_step_through_page_runs_and_prints_what_it_shows(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace, printed = {"__name__": "step_through"}, io.StringIO()
    for number, (kind, body) in enumerate(blocks(STEP_THROUGH), 1):
        if kind == "python":
            with contextlib.redirect_stdout(printed):
                exec(compile(body, f"{STEP_THROUGH.name} block {number}", "exec"), namespace)
        elif kind == "text":
            shown, output = normalise(body), normalise(printed.getvalue())
            starts = [i for i, line in enumerate(output) if line == shown[0]]
            assert any(output[i:i + len(shown)] == shown for i in starts), \
                f"text block {number} is not what the code before it prints:\n{body}"
    page = (tmp_path / "steps" / "index.html").read_text()
    assert page.count("<svg") == 6 and "ArrowRight" in page


def drawing_commands():
    """The console blocks of the pages that draw, and the README's graph/summary/explain lines."""
    lines = [line[2:] for page in (TUTORIAL, STEP_THROUGH) for kind, body in blocks(page) if kind == "console"
             for line in body.splitlines() if line.startswith("$ ")]
    lines += [line for kind, body in blocks(DOCS.parent / "README.md") if kind == "bash"
              for line in body.splitlines() if line.startswith("tinygrad-edu ") and line.split()[1] in DRAWING_COMMANDS]
    return [shlex.split(line, comments=True) for line in lines]


@pytest.mark.parametrize("dot", ["hidden", "as installed"])
def test_drawing_commands_run_with_and_without_graphviz(tmp_path, dot):
    """A learner without Graphviz (no `dot` on PATH) gets the same pictures, through graphviz-pure."""
    commands = drawing_commands()
    assert any(argv[1] == "graph" and "--steps" in argv for argv in commands)
    env = dict(os.environ)
    if dot == "hidden":
        (tmp_path / "empty").mkdir()
        env["PATH"] = str(tmp_path / "empty")       # python runs as sys.executable, by its full path
    elif shutil.which("dot") is None:
        pytest.skip("Graphviz's dot is not installed")
    for argv in commands:
        result = subprocess.run([sys.executable, "-m", "tinygrad_edu"] + argv[1:], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"`{shlex.join(argv)}` failed ({dot} dot):\n{result.stdout}\n{result.stderr}"
        for word in argv:
            if word.endswith((".svg", ".png")):
                assert (tmp_path / word).stat().st_size > 1000
