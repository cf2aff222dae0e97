"""The exercises (examples/exercises/): with the worked solutions filled in, every script and every
notebook runs top to bottom and its grade is "correct"; the stubs are stubs; the notebooks are
stored without outputs and match the scripts they are built from."""
import contextlib
import importlib.util
import io
import pathlib

import nbclient
import nbformat
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "examples" / "notebooks"
spec = importlib.util.spec_from_file_location("make_notebooks", NOTEBOOKS / "make_notebooks.py")
make_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_notebooks)

SCRIPTS = make_notebooks.exercise_scripts()
SMALL = [s for s in SCRIPTS if not s.stem.startswith("ex6")]


def run(source, name, main=True):
    namespace = {"__name__": "__main__" if main else "exercise"}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(source, name, "exec"), namespace)
    return namespace, printed.getvalue()


def test_there_are_six_exercises_each_with_a_solution():
    assert [s.stem[:3] for s in SCRIPTS] == ["ex1", "ex2", "ex3", "ex4", "ex5", "ex6"]
    for script in SCRIPTS:
        exercise_cells = [c for c in make_notebooks.cells(script) if c[2]]
        assert len(exercise_cells) == 1, script.name
        for solution in exercise_cells[0][2]:
            assert (make_notebooks.SOLUTIONS / solution).is_file()


@pytest.mark.parametrize("script", SMALL, ids=lambda p: p.stem)
def test_the_solutions_pass_the_test_and_the_grade(script, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace, printed = run(make_notebooks.script_with_solutions(script), script.name)
    assert "test passed" in printed and "WRONG" not in printed, printed
    reports = namespace["grade"]()
    for report in (reports if isinstance(reports, list) else [reports] if reports is not None else []):
        assert report.ok, str(report)


@pytest.mark.parametrize("script", SMALL, ids=lambda p: p.stem)
def test_the_stubs_are_stubs_and_the_grade_says_so(script):
    namespace, _ = run(script.read_text(), script.name, main=False)
    with pytest.raises(NotImplementedError):
        namespace["test"]()
    if script.stem.startswith("ex2"):
        return                                  # the forward is graded against F.conv2d, not a report
    reports = namespace["grade"]()
    for report in (reports if isinstance(reports, list) else [reports]):
        assert not report.ok and "raised NotImplementedError" in report.diagnosis


def test_the_numpy_cnn_follows_tinygrad_edus_curve(tmp_path):
    script = SCRIPTS[-1]
    namespace, _ = run(make_notebooks.script_with_solutions(script), script.name, main=False)
    with contextlib.redirect_stdout(io.StringIO()):
        curves = namespace["main"](train_digits=100, epochs=1, batch_size=50, plot=str(tmp_path / "curves.png"))
    mine, theirs = curves.values()
    assert len(mine) == 2 and np.allclose(mine, theirs, rtol=1e-10)
    assert (tmp_path / "curves.png").stat().st_size > 1000


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_the_notebooks_are_stored_without_outputs_and_match_the_scripts(script):
    stored = nbformat.read(NOTEBOOKS / f"{script.stem}.ipynb", as_version=4)
    for cell in stored.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
    built = make_notebooks.notebook(script)
    assert [c.source for c in stored.cells] == [c.source for c in built.cells], \
        "rebuild with: python examples/notebooks/make_notebooks.py"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_the_notebooks_run_top_to_bottom_with_the_solutions(script, tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager

    if "python3" not in KernelSpecManager().find_kernel_specs():
        pytest.skip("no python3 Jupyter kernel (pip install ipykernel)")
    nb = nbformat.read(NOTEBOOKS / f"{script.stem}.ipynb", as_version=4)
    for cell in nb.cells:
        if "exercise" in cell.metadata.get("tags", []):
            cell.source = make_notebooks.solution_source(cell.metadata["solutions"])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "WRONG" not in printed and "Error" not in printed, printed
    assert ("loss after" in printed) if script.stem.startswith("ex6") else ("test passed" in printed)
