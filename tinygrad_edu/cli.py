"""The `tinygrad-edu` command (also `python -m tinygrad_edu`).

    tinygrad-edu train [--model seed|wide|bn] [--epochs N] [--batch-size N] [--lr LR]
                       [--optimizer sgd|adam] [--data DIR] [--seed N] [--out DIR]
    tinygrad-edu evaluate --checkpoint FILE [--data DIR]
    tinygrad-edu export --checkpoint FILE --out model.pt
    tinygrad-edu summary [--model seed|wide|bn]
    tinygrad-edu graph [--model seed|wide|bn] [--backward] [--values] [--out graph.svg] [--steps DIR]
    tinygrad-edu explain conv2d --input 10,3,12,12 --weight 6,3,5,5 [--stride 1] [--padding 0]
    tinygrad-edu explain max_pool2d --input 10,6,8,8 --kernel-size 2
    tinygrad-edu animate conv2d --input 1,1,5,5 --weight 1,1,3,3 [--stride --padding --dilation --groups]
                         [--view forward|input-grad|weight-grad|modes|channels] --out FILE.gif|.png|.html
    tinygrad-edu animate max_pool2d|avg_pool2d --input 1,1,6,6 --kernel-size 2 [--stride --padding] --out FILE
    tinygrad-edu check my_cnn.py:conv_backward --op conv2d [--forward FUNCTION] [--stride --padding ...]

This is the only module that knows argparse: the library's functions take plain arguments.
Each subcommand is registered by one small `add_<name>_command(subparsers)` function listed in
COMMANDS; it adds its arguments and sets `run=` to the function that does the work, which gets
the parsed arguments, calls the library and returns the exit status. To add a command, write such
a pair and append the first to COMMANDS (docs/architecture.md has the checklist).

Mistakes in the arguments, and expected failures such as a missing or damaged data file, end in
one line on stderr (`tinygrad-edu: error: ...`) and a non-zero exit status (2 for a bad argument,
1 for a failure), never a traceback.
"""
import argparse
import sys
import warnings
from pathlib import Path

PROG = "tinygrad-edu"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block above it) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class CommandError(Exception):
    """A failure to report as one line, not a traceback (exit status 1)."""


class UsageError(CommandError):
    """Arguments that argparse accepted one by one but that do not go together (exit status 2)."""


# ---- argument types: each refuses a bad value with a message argparse prints on one line ----
def _int_at_least(minimum, wording):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {wording}, got {value}")
        return value
    return parse


positive_int = _int_at_least(1, "at least 1")
non_negative_int = _int_at_least(0, "0 or more")


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def existing_directory(text):
    if not Path(text).is_dir():
        raise argparse.ArgumentTypeError(f"directory {text!r} does not exist")
    return text


def existing_file(text):
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"file {text!r} does not exist")
    return text


def int_or_pair(text):
    """'2' -> 2, '2,1' -> (2, 1)."""
    parts = [p for p in text.split(",") if p.strip()]
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"expected an int or a pair like 2,1, got {text!r}")
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


def padding_arg(text):
    """An int, a pair, or conv2d's 'same' / 'valid'."""
    return text if text in ("same", "valid") else int_or_pair(text)


def shape_arg(text):
    """'10,3,12,12' (or '10x3x12x12') -> (10, 3, 12, 12)."""
    parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
    if not parts or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise argparse.ArgumentTypeError(f"expected a shape of positive sizes like 10,3,12,12, got {text!r}")
    return tuple(int(p) for p in parts)


def shape4_arg(text):
    """A 4-D shape: N,C,H,W for activations, C_out,C_in,kH,kW for weights."""
    shape = shape_arg(text)
    if len(shape) != 4:
        raise argparse.ArgumentTypeError(f"expected a shape of 4 positive sizes like 1,1,6,6, got {text!r}")
    return shape


def model_choice(parser):
    from .nn import models
    parser.add_argument("--model", default="seed", choices=list(models.ARCHITECTURES),
                        help="which of tinygrad_edu.models (default seed)")


def example_batch(model="seed", batch=10):
    """(params, images, labels) for drawing or summarising one of tinygrad_edu.models: fresh
    parameters (seed 0) and the first `batch` digits of the bundled MNIST test set."""
    from .data import datasets
    from .engine import Tensor
    from .nn import models
    params = models.init_params(model, rng=0)
    _, _, x_test, y_test = datasets.load_mnist()
    if not 1 <= batch <= len(x_test):
        raise UsageError(f"--batch must be between 1 and {len(x_test)}, got {batch}")
    return params, Tensor(x_test[:batch], name="images"), Tensor(y_test[:batch], name="labels")


# ---- train ----------------------------------------------------------------------------------
def add_train_command(subparsers):
    from .nn import models
    from .training.loop import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_OPTIMIZER

    parser = subparsers.add_parser(
        "train", help="train a CNN on MNIST and write a checkpoint, plots and metrics",
        description="Train a small CNN on MNIST (by default the 5,000 digits bundled with the "
                    "package) and write checkpoint.npz (after every epoch), curves.png, health.png "
                    "(gradient norms, update/weight ratios and dead ReLUs of every layer), "
                    "filters.png, feature_maps.png and metrics.json into --out. A run whose loss "
                    "becomes NaN or grows past 10x its start stops with a diagnosis (exit status 1); "
                    "Ctrl-C keeps the last finished epoch (exit status 130).")
    parser.add_argument("--model", choices=list(models.ARCHITECTURES), default="seed",
                        help="seed: 3 and 6 filters, 80 hidden; wide: 16 and 32 filters, 128 hidden; "
                             "bn: conv-batchnorm-relu blocks of 8 and 16 filters, 64 hidden with dropout "
                             "(default: seed)")
    parser.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS,
                        help=f"passes over the training digits (default: {DEFAULT_EPOCHS})")
    parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE,
                        help=f"digits per step (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--lr", type=positive_float, default=None,
                        help="peak learning rate, decayed to 0 along a cosine (default: "
                             + ", ".join(f"{v:g} for {k}" for k, v in DEFAULT_LR.items()) + ")")
    parser.add_argument("--optimizer", choices=list(DEFAULT_LR), default=DEFAULT_OPTIMIZER,
                        help=f"sgd (momentum 0.9) or adam (default: {DEFAULT_OPTIMIZER})")
    parser.add_argument("--data", type=existing_directory, default=None, metavar="DIR",
                        help="a directory with the full MNIST IDX files (train-images-idx3-ubyte[.gz], "
                             "...); default: the bundled 4,000 / 1,000 digits")
    parser.add_argument("--seed", type=non_negative_int, default=0,
                        help="seed for the initial weights and the order of the digits; the same seed "
                             "gives the same numbers (default: 0)")
    parser.add_argument("--out", default=None, metavar="DIR",
                        help="where to write the results (default: runs/<model>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar, only the epoch lines")
    parser.set_defaults(run=run_train)


def run_train(args):
    import textwrap

    from .training.loop import TrainConfig, TrainingDiverged, TrainingInterrupted, train

    out = Path(args.out if args.out is not None else Path("runs") / args.model)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a file, not a directory")
    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, data=args.data, seed=args.seed, out=str(out))
    try:
        # NumPy's overflow/invalid RuntimeWarnings ("overflow encountered in matmul") would come
        # before, and say less than, the health check's diagnosis of the same steps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            train(config, progress=not args.no_progress)
    except TrainingDiverged as diverged:      # one paragraph: where, which layer, why, what to try
        print(textwrap.fill(f"{PROG}: {diverged}", width=100), file=sys.stderr)
        return 1
    except TrainingInterrupted as interrupted:
        print(f"{PROG}: {interrupted}", file=sys.stderr)
        return 130
    return 0


# ---- evaluate ---------------------------------------------------------------------------------
def add_evaluate_command(subparsers):
    parser = subparsers.add_parser(
        "evaluate", help="test accuracy and confusion matrix of a saved checkpoint",
        description="Load a checkpoint written by 'train' and report its accuracy on the test "
                    "digits, with a confusion matrix.")
    parser.add_argument("--checkpoint", type=existing_file, required=True, metavar="FILE",
                        help="a checkpoint.npz written by 'tinygrad-edu train'")
    parser.add_argument("--data", type=existing_directory, default=None, metavar="DIR",
                        help="a directory with the full MNIST IDX files; default: the bundled test digits")
    parser.set_defaults(run=run_evaluate)


def run_evaluate(args):
    from .training.loop import evaluate, format_confusion_matrix

    accuracy, counts = evaluate(args.checkpoint, args.data)
    total = int(counts.sum())
    print(f"test accuracy {100 * accuracy:.2f}% ({int(counts.trace())}/{total} digits)")
    print(format_confusion_matrix(counts))
    return 0


# ---- summary ----------------------------------------------------------------------------------
def add_summary_command(subparsers):
    parser = subparsers.add_parser(
        "summary", help="print a model's layers with their output shapes and parameter counts",
        description="Run one batch of MNIST digits through a model and print each layer's output shape "
                    "and parameter count, in execution order.",
        epilog="example: tinygrad-edu summary --model seed")
    model_choice(parser)
    parser.add_argument("--batch", type=int, default=10, help="digits in the batch (default 10)")
    parser.set_defaults(run=run_summary)


def run_summary(args):
    from .nn import models
    from .teach.summary import summary

    params, images, _ = example_batch(args.model, args.batch)
    summary(models.forward, images, params=params)
    return 0


# ---- graph ------------------------------------------------------------------------------------
def add_graph_command(subparsers):
    from .viz.graph import DEFAULT_MAX_NODES

    parser = subparsers.add_parser(
        "graph", help="draw a model's computation graph (forward, or --backward) as SVG/PNG/PDF/DOT",
        description="Run one batch of MNIST digits through a model, backpropagate its loss, and draw the "
                    "graph: every op with its output shape, or with --backward every VJP rule with the "
                    "gradient's shape. The format follows --out's suffix: .svg and .png are drawn by "
                    "Graphviz's `dot` when it is installed, else by graphviz-pure (installed with "
                    "tinygrad_edu); .pdf needs Graphviz; .dot/.gv write the DOT text. --steps DIR writes "
                    "one picture per step of backward and DIR/index.html to step through them.",
        epilog="examples: tinygrad-edu graph --model seed --out graph.svg; "
               "tinygrad-edu graph --backward --batch 1 --steps steps/")
    model_choice(parser)
    parser.add_argument("--out", default=None, help="the file to write (default graph.svg, or none with --steps)")
    parser.add_argument("--backward", action="store_true", help="draw the backward graph (the VJP rules)")
    parser.add_argument("--values", action="store_true",
                        help="show the numbers: values and gradients, with their signs (min/mean/max when big)")
    parser.add_argument("--steps", metavar="DIR", default=None,
                        help="write one frame per step of backward into DIR, and DIR/index.html to "
                             "step through them with the arrow keys")
    parser.add_argument("--batch", type=int, default=10, help="digits in the batch (default 10)")
    parser.add_argument("--rankdir", default="TB", choices=("TB", "LR"), help="top to bottom or left to right")
    parser.add_argument("--max-nodes", type=_int_at_least(2, "at least 2"), default=DEFAULT_MAX_NODES,
                        help=f"fold scopes beyond this many nodes (default {DEFAULT_MAX_NODES})")
    parser.set_defaults(run=run_graph)


def run_graph(args):
    from .nn import models
    from .viz import RenderError, draw_graph, write_steps

    if args.out is not None:
        out = Path(args.out)
    else:                            # with --steps alone, only the frames
        out = Path("graph.svg") if args.steps is None else None
    fmt = out.suffix.lstrip(".").lower() if out is not None else None
    if out is not None and fmt not in ("svg", "png", "pdf", "dot", "gv"):
        raise UsageError(f"graph: --out must end in .svg, .png, .pdf, .dot or .gv, got {args.out!r}")
    if args.steps is not None and Path(args.steps).is_file():
        raise UsageError(f"graph: --steps {args.steps!r} is a file, not a directory")
    params, images, labels = example_batch(args.model, args.batch)
    loss = models.loss_fn(params, images, labels)
    loss.name = "loss"
    if args.steps is not None:       # the steps replay backward from the graph as it is now
        try:
            *frames, page = write_steps(loss, args.steps, rankdir=args.rankdir, max_nodes=args.max_nodes)
        except (RenderError, ValueError) as error:
            raise CommandError(f"graph: {error}") from None
        print(f"wrote {len(frames)} frames of backward, {frames[0].name} to {frames[-1].name}, and {page} "
              f"(open it in a browser; the arrow keys step)")
    if out is None:
        return 0
    loss.backward()
    graph = draw_graph(loss, backward=args.backward, show_values=args.values, rankdir=args.rankdir,
                       max_nodes=args.max_nodes)
    if out.parent != Path(""):
        out.parent.mkdir(parents=True, exist_ok=True)
    try:
        if fmt in ("dot", "gv"):
            out.write_text(graph.source)
        else:
            out.write_bytes(graph.pipe(format=fmt))
    except RenderError as error:
        raise CommandError(f"graph: {error}") from None
    caption = graph.captions[0].split(" (")[0]      # e.g. 'forward graph: 15 ops, 10 leaves'
    print(f"wrote {out}  ({caption}; model {args.model}, batch {args.batch})")
    return 0


# ---- explain ----------------------------------------------------------------------------------
def reshape_arg(text):
    """'10,-1' -> (10, -1): a new shape for reshape (one -1 allowed)."""
    try:
        return tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a shape like 10,96 or 10,-1, got {text!r}") from None


def add_explain_command(subparsers):
    from .teach.explain import ENTRIES

    parser = subparsers.add_parser(
        "explain", help="print an op's forward and backward recipe with every shape (--numbers: every array)",
        description="Print the forward and backward (VJP) recipe of an op step by step, with the shape after "
                    "each step (with --numbers, the arrays themselves on a small example), checked against "
                    "tinygrad_edu's own gradients.",
        epilog="examples: tinygrad-edu explain conv2d --input 10,3,12,12 --weight 6,3,5,5 --stride 1;  "
               "tinygrad-edu explain conv2d --numbers;  tinygrad-edu explain cross_entropy --numbers")
    parser.add_argument("op", choices=sorted(ENTRIES))
    parser.add_argument("--input", type=shape_arg,
                        help="the input's shape, e.g. N,C,H,W = 10,3,12,12 (default: a small example)")
    parser.add_argument("--weight", type=shape_arg,
                        help="conv2d: C_out,C_in/groups,kH,kW, e.g. 6,3,5,5; conv_transpose2d: C_in,C_out/groups,"
                             "kH,kW; linear: out,in")
    parser.add_argument("--kernel-size", type=int_or_pair, help="pools: e.g. 2 or 3,2")
    parser.add_argument("--stride", type=int_or_pair,
                        help="an int or a pair (convolutions: default 1; pools: the kernel size)")
    parser.add_argument("--padding", type=padding_arg, help="an int, a pair, or (conv2d) same / valid (default 0)")
    parser.add_argument("--dilation", type=int_or_pair, help="convolutions (default 1)")
    parser.add_argument("--groups", type=int, help="convolutions (default 1)")
    parser.add_argument("--no-bias", action="store_true", help="conv2d, conv_transpose2d, linear: leave the bias out")
    parser.add_argument("--numbers", action="store_true",
                        help="print every array, not only its shape (small integers; without --input, a small example)")
    parser.add_argument("--rng", type=int, default=0, help="the seed of the example's numbers (default 0)")
    parser.add_argument("--output-padding", type=int_or_pair, help="conv_transpose2d (default 0)")
    parser.add_argument("--other", type=shape_arg, help="matmul: the right factor's shape, e.g. 3,4")
    parser.add_argument("--shape", type=reshape_arg, help="reshape: the new shape, e.g. 10,-1")
    parser.add_argument("--axis", type=int, help="softmax, log_softmax (default -1)")
    parser.set_defaults(run=run_explain)


def run_explain(args):
    from .teach.explain import explain

    given = dict(input=args.input, weight=args.weight, kernel_size=args.kernel_size, stride=args.stride,
                 padding=args.padding, dilation=args.dilation, groups=args.groups,
                 bias=False if args.no_bias else None, output_padding=args.output_padding, other=args.other,
                 shape=args.shape, axis=args.axis)
    try:
        if args.op in ("conv2d", "conv_transpose2d") and args.input is not None and args.weight is None:
            raise ValueError(f"{args.op} needs --weight (e.g. --weight 6,3,5,5)")
        if args.op in ("max_pool2d", "avg_pool2d") and args.input is not None and args.kernel_size is None:
            raise ValueError(f"{args.op} needs --kernel-size (e.g. --kernel-size 2)")
        explain(args.op, numbers=args.numbers, rng=args.rng, **given)
    except (TypeError, ValueError) as error:
        raise UsageError(f"explain: {error}") from None
    return 0


# ---- export -----------------------------------------------------------------------------------
def add_export_command(subparsers):
    parser = subparsers.add_parser(
        "export", help="write a checkpoint as a PyTorch state_dict (needs PyTorch)",
        description="Convert a checkpoint written by 'train' into a PyTorch state_dict saved with "
                    "torch.save, with the same parameter names and layouts; load it into "
                    "tinygrad_edu.interop.torch_module(model) with load_state_dict.")
    parser.add_argument("--checkpoint", type=existing_file, required=True, metavar="FILE",
                        help="a checkpoint.npz written by 'tinygrad-edu train'")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write, e.g. model.pt")
    parser.set_defaults(run=run_export)


def run_export(args):
    from .interop import TorchNotInstalledError, export_checkpoint

    try:
        out, model = export_checkpoint(args.checkpoint, args.out)
    except TorchNotInstalledError as error:
        raise CommandError(str(error)) from None
    print(f"wrote the {model} model's state_dict to {out} "
          f"(load it with tinygrad_edu.interop.torch_module({model!r}).load_state_dict(torch.load(...)))")
    return 0


# ---- animate ----------------------------------------------------------------------------------
def add_animate_command(subparsers):
    parser = subparsers.add_parser(
        "animate", help="draw conv2d or a pool, and their gradients, frame by frame (GIF, PNG sheet, HTML)",
        description="Animate conv2d (views: forward, input-grad, weight-grad, modes, channels) or "
                    "max_pool2d / avg_pool2d on small random integers, every number computed by "
                    "tinygrad_edu's own ops. --out FILE ending in .gif (animation), .png (all frames "
                    "on one sheet) or .html (a player that needs no network).",
        epilog="example: tinygrad-edu animate conv2d --input 1,1,5,5 --weight 1,1,3,3 --view input-grad "
               "--out dx.gif")
    parser.add_argument("op", choices=("conv2d", "max_pool2d", "avg_pool2d"))
    parser.add_argument("--input", required=True, type=shape4_arg, metavar="N,C,H,W",
                        help="the input's shape, e.g. 1,1,6,6")
    parser.add_argument("--weight", type=shape4_arg, metavar="O,C,kH,kW",
                        help="conv2d: the weight's shape C_out,C_in/groups,kH,kW, e.g. 1,1,3,3")
    parser.add_argument("--kernel-size", type=int_or_pair, help="pools: e.g. 2 or 3,2")
    parser.add_argument("--stride", type=int_or_pair,
                        help="an int or a pair (conv2d: default 1; pools: the kernel size)")
    parser.add_argument("--padding", type=padding_arg, default=0,
                        help="an int, a pair, or (conv2d) same / valid (default 0)")
    parser.add_argument("--dilation", type=int_or_pair, default=1, help="conv2d (default 1)")
    parser.add_argument("--groups", type=positive_int, default=1, help="conv2d (default 1)")
    parser.add_argument("--view", default=None,
                        help="conv2d: forward (default), input-grad, weight-grad, modes, channels; "
                             "pools: forward (the window values and where their gradient goes)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for the random integers (default 0)")
    parser.add_argument("--out", required=True, metavar="FILE", help="FILE.gif, FILE.png or FILE.html")
    parser.set_defaults(run=run_animate)


def run_animate(args):
    from .teach.pictures import animate

    suffix = Path(args.out).suffix.lower()
    if suffix not in (".gif", ".png", ".html"):
        raise UsageError(f"animate: --out must end in .gif, .png or .html, got {args.out!r}")
    if args.op == "conv2d" and args.weight is None:
        raise UsageError("animate: conv2d needs --weight (e.g. --weight 1,1,3,3)")
    if args.op != "conv2d" and args.kernel_size is None:
        raise UsageError(f"animate: {args.op} needs --kernel-size (e.g. --kernel-size 2)")
    try:
        animation = animate(args.op, input=args.input, weight=args.weight, stride=args.stride,
                            padding=args.padding, dilation=args.dilation, groups=args.groups,
                            kernel_size=args.kernel_size, view=args.view or "forward", rng=args.seed)
        frames = len(animation.frames)
    except (TypeError, ValueError) as error:
        message = str(error)
        raise CommandError(message if message.startswith("animate") else f"animate: {message}") from None
    animation.save(args.out)
    print(f"wrote {args.out} ({frames} frame{'s' if frames != 1 else ''})")
    return 0


# ---- check ------------------------------------------------------------------------------------
def add_check_command(subparsers):
    from .teach.check import OPS

    parser = subparsers.add_parser(
        "check", help="check your own NumPy backward function and say what is wrong with it",
        description="Call FUNCTION from FILE.py on small random inputs, compare what it returns with "
                    "tinygrad_edu's gradients, and name the mistake when it is wrong. Exit status 0 "
                    "only when it is correct. FUNCTION is called as check_backward calls it (conv2d: "
                    "fn(delta, x, w, stride=, padding=, ...) -> dx or (dx, dw, db)); with --forward it is "
                    "the course-style backward_fn(dout, cache) and --forward names forward_fn.",
        epilog="example: tinygrad-edu check my_cnn.py:conv_backward --op conv2d --stride 2 --padding 1")
    parser.add_argument("target", metavar="FILE.py:FUNCTION", help="the file and the function in it to check")
    parser.add_argument("--op", required=True, choices=OPS, help="the operation FUNCTION is the backward of")
    parser.add_argument("--forward", metavar="FUNCTION", default=None,
                        help="course style: the forward function in the same file, returning (out, cache)")
    parser.add_argument("--stride", type=int_or_pair, default=None,
                        help="an int or a pair like 2,1 (conv2d: default 1; pools: the kernel size)")
    parser.add_argument("--padding", type=int_or_pair, default=None, help="an int or a pair (default 0)")
    parser.add_argument("--dilation", type=int_or_pair, default=None, help="conv2d (default 1)")
    parser.add_argument("--groups", type=positive_int, default=None, help="conv2d (default 1)")
    parser.add_argument("--kernel-size", type=int_or_pair, default=None,
                        help="pools: the window (default 2); conv2d: the kernel of the test inputs")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed of the random inputs (default: 0)")
    parser.set_defaults(run=run_check)


def load_function(target, name=None):
    """FILE.py:FUNCTION (or FILE.py and a separate name) -> the function; any failure is a CommandError."""
    import importlib.util

    path, colon, function = target.rpartition(":")
    if name is not None:
        path, function = (path if colon else target), name
    elif not colon or not path or not function:
        raise CommandError(f"expected FILE.py:FUNCTION, got {target!r}")
    file = Path(path)
    if file.suffix != ".py":
        raise CommandError(f"{path!r} is not a Python file (expected FILE.py:FUNCTION)")
    if not file.is_file():
        raise CommandError(f"file {path!r} does not exist")
    spec = importlib.util.spec_from_file_location(f"_learner_{file.stem}", file)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(file.resolve().parent))     # so the file can import its neighbours
    try:
        spec.loader.exec_module(module)
    except SyntaxError as error:
        raise CommandError(f"could not load {path}: SyntaxError at line {error.lineno}: {error.msg}") from None
    except Exception as error:                          # noqa: BLE001 - the learner's file, reported in one line
        raise CommandError(f"could not load {path}: {type(error).__name__}: {error}") from None
    finally:
        sys.path.remove(str(file.resolve().parent))
    fn = getattr(module, function, None)
    if not callable(fn):
        defined = sorted(n for n, v in vars(module).items()
                         if callable(v) and getattr(v, "__module__", None) == module.__name__)
        raise CommandError(f"{path} has no function {function!r}"
                           + (f" (it defines: {', '.join(defined)})" if defined else ""))
    return fn


def run_check(args):
    from .teach.check import check_backward, check_layer

    fn = load_function(args.target)
    params = {key: value for key, value in (("stride", args.stride), ("padding", args.padding),
                                            ("dilation", args.dilation), ("groups", args.groups),
                                            ("kernel_size", args.kernel_size)) if value is not None}
    try:
        if args.forward is not None:
            forward = load_function(args.target, args.forward)
            report = check_layer(forward, fn, args.op, seed=args.seed, **params)
        else:
            report = check_backward(fn, args.op, seed=args.seed, **params)
    except (TypeError, ValueError) as error:   # the function cannot be called as documented
        raise CommandError(str(error).removeprefix("check_backward: ").removeprefix("check_layer: ")) from None
    print(report)
    return 0 if report.ok else 1


# ---- the command ------------------------------------------------------------------------------
COMMANDS = [add_train_command, add_evaluate_command, add_export_command, add_summary_command, add_graph_command,
            add_explain_command, add_animate_command, add_check_command]


def build_parser():
    from . import __version__

    parser = ArgumentParser(prog=PROG, description="tinygrad_edu: train and inspect small CNNs "
                                                   "built on a readable autograd engine.")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="command", required=True)
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None):
    """Run the command line `argv` (default: sys.argv[1:]); returns the exit status."""
    args = build_parser().parse_args(argv)
    from .data.datasets import IDXError
    from .training.checkpoint import CheckpointError

    try:
        return args.run(args)
    except (CommandError, CheckpointError, IDXError, OSError) as error:  # OSError: missing/unwritable files
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
