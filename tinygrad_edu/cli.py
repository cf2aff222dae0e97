"""The `tinygrad-edu` command (also `python -m tinygrad_edu`).

    tinygrad-edu train [--model seed|wide] [--epochs N] [--batch-size N] [--lr LR]
                       [--optimizer sgd|adam] [--data DIR] [--seed N] [--out DIR]
    tinygrad-edu evaluate --checkpoint FILE [--data DIR]
    tinygrad-edu summary [--model seed|wide]
    tinygrad-edu graph [--model seed|wide] [--backward] [--out graph.svg]
    tinygrad-edu explain conv2d --input 10,3,12,12 --weight 6,3,5,5 [--stride 1] [--padding 0]
    tinygrad-edu explain max_pool2d --input 10,6,8,8 --kernel-size 2
    tinygrad-edu check FILE.py:FUNCTION --op conv2d [--stride 2] [--padding 1] [--forward FUNCTION]

Each subcommand is registered by one small `add_<name>_command(subparsers)` function listed in
COMMANDS; it adds its arguments and sets `run=` to the function that does the work, which gets
the parsed arguments and returns the exit status. To add a command, write such a function and
append it to COMMANDS.

Mistakes in the arguments, and expected failures such as a missing or damaged data file, end in
one line on stderr (`tinygrad-edu: error: ...`) and a non-zero exit status, never a traceback.
"""
import argparse
import sys
from pathlib import Path

PROG = "tinygrad-edu"


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but an error is one line (no usage block above it) and exit status 2."""

    def error(self, message):
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


class CommandError(Exception):
    """A failure to report as one line, not a traceback."""


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


# ---- train ----------------------------------------------------------------------------------
def add_train_command(subparsers):
    from .train import DEFAULT_BATCH_SIZE, DEFAULT_EPOCHS, DEFAULT_LR, DEFAULT_OPTIMIZER

    parser = subparsers.add_parser(
        "train", help="train a CNN on MNIST and write a checkpoint, plots and metrics",
        description="Train a small CNN on MNIST (by default the 5,000 digits bundled with the "
                    "package) and write checkpoint.npz, curves.png, filters.png, feature_maps.png "
                    "and metrics.json into --out.")
    parser.add_argument("--model", choices=["seed", "wide"], default="seed",
                        help="seed: 3 and 6 filters, 80 hidden; wide: 16 and 32 filters, 128 hidden "
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
    from .train import TrainConfig, train

    out = Path(args.out if args.out is not None else Path("runs") / args.model)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {str(out)!r} is a file, not a directory")
    config = TrainConfig(model=args.model, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         optimizer=args.optimizer, data=args.data, seed=args.seed, out=str(out))
    train(config, progress=not args.no_progress)
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
    from .train import evaluate, format_confusion_matrix

    accuracy, counts = evaluate(args.checkpoint, args.data)
    total = int(counts.sum())
    print(f"test accuracy {100 * accuracy:.2f}% ({int(counts.trace())}/{total} digits)")
    print(format_confusion_matrix(counts))
    return 0


# ---- check ------------------------------------------------------------------------------------
def int_or_pair(text):
    """'2' -> 2, '2,1' -> (2, 1)."""
    parts = text.split(",")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number or a pair like 2,1, got {text!r}") from None
    if len(values) not in (1, 2) or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0 or a pair like 2,1, got {text!r}")
    return values[0] if len(values) == 1 else values


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
# summary, graph and explain live beside what they show (tinygrad_edu.summary, .viz, .explain)
from .explain import add_explain_command  # noqa: E402
from .summary import add_summary_command  # noqa: E402
from .viz import add_graph_command  # noqa: E402

COMMANDS = [add_train_command, add_evaluate_command, add_summary_command, add_graph_command, add_explain_command,
            add_check_command]


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
    from .checkpoint import CheckpointError
    from .datasets import IDXError

    try:
        return args.run(args)
    except (CommandError, CheckpointError, IDXError, OSError) as error:  # OSError: missing/unwritable files
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
