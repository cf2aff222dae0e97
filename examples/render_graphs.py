"""Draw the seed model's computation graph, forward and backward, as SVG and PNG.

    python examples/render_graphs.py [--out DIR]

It builds the seed CNN (tinygrad_edu.models), runs one batch of 10 real MNIST test digits through
it, backpropagates the loss (so the parameters' gradients show up in the drawing) and writes

    DIR/seed_forward.svg   DIR/seed_forward.png    every op with its parameters and output shape
    DIR/seed_backward.svg  DIR/seed_backward.png   every VJP the backward pass applies, with the
                                                   gradient's shape on each edge

Drawn by Graphviz's `dot` when it is installed, else by graphviz-pure (installed by pip with
tinygrad_edu). docs/seed_backward_graph.svg, the picture in the tutorial and the README, is this
script's seed_backward.svg.
"""
import argparse
import pathlib

import tinygrad_edu as tg
from tinygrad_edu import datasets, models


def seed_loss(batch=10):
    """The seed model's loss on the first `batch` test digits, after backward."""
    _, _, x_test, y_test = datasets.load_mnist()
    params = models.init_params("seed", rng=0)
    images = tg.Tensor(x_test[:batch], name="images")
    loss = models.loss_fn(params, images, y_test[:batch])
    loss.name = "loss"
    loss.backward()
    return loss


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="graphs", help="folder to write into (default: graphs)")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    loss = seed_loss()
    for view, backward in (("forward", False), ("backward", True)):
        graph = tg.draw_graph(loss, backward=backward)
        for fmt in ("svg", "png"):
            path = graph.render(out / f"seed_{view}", format=fmt, cleanup=True)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
