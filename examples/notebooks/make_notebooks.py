"""Build the exercise notebooks from the exercise scripts, so that the two never drift apart.

    python examples/notebooks/make_notebooks.py

Each examples/exercises/exN_*.py is written in the "percent" cell format: a line `# %%` starts a
code cell, `# %% [markdown]` a text cell (its lines without the leading `# `), and
`# %% exercise: FILE.py ...` the cell the learner fills in. That cell is tagged "exercise" and
remembers its worked solution(s) in examples/exercises/solutions/, so that CI can run every
notebook top to bottom with the solutions filled in (tests/test_exercises.py). The notebooks are
written without outputs.
"""
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
EXERCISES = HERE.parent / "exercises"
SOLUTIONS = EXERCISES / "solutions"


def cells(path):
    """[(kind, source, solutions)] of a percent-format script; kind "code" or "markdown"."""
    found, kind, solutions, lines = [], None, (), []

    def close():
        if kind is not None:
            text = "\n".join(lines).strip("\n")
            if kind == "markdown":
                text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            found.append((kind, text, solutions))

    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith("# %%"):
            close()
            header = line[4:].strip()
            kind = "markdown" if header == "[markdown]" else "code"
            solutions = tuple(header.split(":", 1)[1].split()) if header.startswith("exercise:") else ()
            lines = []
        else:
            lines.append(line)
    close()
    return found


def solution_source(solutions):
    return "\n\n\n".join((SOLUTIONS / name).read_text().strip("\n") for name in solutions)


def script_with_solutions(path):
    """The exercise script's source with each exercise cell replaced by its worked solution."""
    return "\n\n\n".join(solution_source(solutions) if solutions else
                         ("" if kind == "markdown" else source) for kind, source, solutions in cells(path))


def notebook(path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source, solutions in cells(path):
        if kind == "markdown":
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
        else:
            cell = nbformat.v4.new_code_cell(source)
            if solutions:
                cell.metadata["tags"] = ["exercise"]
                cell.metadata["solutions"] = list(solutions)
            nb.cells.append(cell)
    for i, cell in enumerate(nb.cells):          # stable ids: the files only change when the scripts do
        cell["id"] = f"{path.stem[:3]}-{i}"
    return nb


def exercise_scripts():
    return sorted(EXERCISES.glob("ex*.py"))


def main():
    import nbformat

    for script in exercise_scripts():
        target = HERE / f"{script.stem}.ipynb"
        nbformat.write(notebook(script), target)
        print(f"wrote {target.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    sys.exit(main())
