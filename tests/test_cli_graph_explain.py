"""`tinygrad-edu explain`, `graph` and `summary`, run through the real command line's main()."""
import xml.etree.ElementTree as ET

import pytest

from tinygrad_edu.cli import main



def one_line_error(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("tinygrad-edu: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_explain_the_seed_conv_backward(capsys):
    assert main(["explain", "conv2d", "--input", "10,3,12,12", "--weight", "6,3,5,5", "--stride", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("pad g by 4 on each side", "(10, 6, 16, 16)", "(3, 6, 5, 5)",
                 "ok  dx (10, 3, 12, 12) equals tinygrad_edu.grad"):
        assert text in out


def test_explain_stride_padding_groups_and_pooling(capsys):
    assert main(["explain", "conv2d", "--input", "2,4,9,9", "--weight", "6,2,3,3", "--stride", "2,1",
                 "--padding", "1", "--dilation", "2", "--groups", "2", "--no-bias"]) == 0
    out = capsys.readouterr().out
    assert "groups 2" in out and "dL/db" not in out
    assert main(["explain", "conv2d", "--input", "1,2,6,6", "--weight", "2,2,4,4", "--padding", "same"]) == 0
    assert main(["explain", "max_pool2d", "--input", "10,6,8,8", "--kernel-size", "2"]) == 0
    assert "route" not in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["explain", "conv2d", "--input", "10,3,12,12", "--weight", "6,4,5,5"],     # channel mismatch
    ["explain", "conv2d", "--input", "10,3,12,12"],                            # no weight
    ["explain", "max_pool2d", "--input", "1,1,4,4"],                           # no kernel size
    ["explain", "conv2d", "--input", "1,1,4,4", "--weight", "1,1,5,5"],        # kernel larger than the input
])
def test_explain_mistakes_are_one_line_errors(argv, capsys):
    assert main(argv) == 2
    one_line_error(capsys)


def test_bad_argument_values_are_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "conv2d", "--input", "10,3,12,12", "--weight", "6,3,5,5", "--stride", "two"])
    assert exit_info.value.code == 2
    assert "stride" in one_line_error(capsys)
    with pytest.raises(SystemExit):
        main(["graph", "--model", "huge"])
    assert "invalid choice" in one_line_error(capsys)


def test_graph_writes_svg_and_png(tmp_path, capsys):
    svg = tmp_path / "graph.svg"
    assert main(["graph", "--model", "seed", "--out", str(svg)]) == 0
    assert "forward graph: 15 ops, 10 leaves" in capsys.readouterr().out
    texts = [t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "conv2d stride=1 pad=0" in texts and "(10, 6, 8, 8) float32" in texts
    png = tmp_path / "sub" / "graph_backward.png"
    assert main(["graph", "--model", "seed", "--backward", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_graph_without_graphviz_draws_svg_and_says_what_pdf_needs(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", "")           # no `dot`: SVG/PNG come from graphviz-pure
    out = tmp_path / "graph.dot"
    assert main(["graph", "--model", "wide", "--backward", "--out", str(out)]) == 0
    assert out.read_text().startswith("digraph backward")
    assert main(["graph", "--out", str(tmp_path / "graph.svg")]) == 0
    assert "<svg" in (tmp_path / "graph.svg").read_text()
    assert main(["graph", "--out", str(tmp_path / "graph.pdf")]) == 1
    assert "PDF needs the Graphviz program `dot`" in one_line_error(capsys)


def test_graph_refuses_an_unknown_format_and_a_bad_batch(tmp_path, capsys):
    assert main(["graph", "--out", str(tmp_path / "graph.jpg")]) == 2
    assert ".svg, .png" in one_line_error(capsys)
    assert main(["graph", "--batch", "0", "--out", str(tmp_path / "graph.dot")]) == 2
    assert "--batch" in one_line_error(capsys)


def test_summary_prints_the_seed_listing(capsys):
    assert main(["summary", "--model", "seed"]) == 0
    out = capsys.readouterr().out
    shapes = [line.split()[-2] for line in out.splitlines()[3:11]]
    assert shapes == ["10x1x28x28", "10x3x24x24", "10x3x12x12", "10x6x8x8", "10x6x4x4", "10x96", "10x80", "10x10"]
    assert "Total params: 9,104 in 8 tensors" in out
