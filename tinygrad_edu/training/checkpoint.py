"""Saving and loading a model's parameters as a `.npz` file.

A checkpoint is a plain NumPy archive: one array per parameter, under its name (`conv1.weight`,
...), plus a few `meta.*` entries (the architecture's name, a format version). Loading uses
`allow_pickle=False`, so a checkpoint can never run code, and checks every name and shape against
the architecture before anything is used: a checkpoint of another model, or a damaged one, is
refused with a message that says what differs.

Every file is written atomically (`atomic_write`): to a temporary file in the same folder,
flushed to the disk, then renamed over the old one. A Ctrl-C, a full disk or an error halfway
leaves the previous file whole; a reader never sees half a checkpoint.
"""
import contextlib
import os
import secrets
from pathlib import Path

import numpy as np

from ..nn import models
from ..engine import Tensor

FORMAT_VERSION = 1
_META = "meta."


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or does not fit the model; the message says why."""


def atomic_write(path, write):
    """Call `write(f)` on a new binary file that replaces `path` only once it is complete: a
    temporary file in the same folder (so the rename stays on one file system), flushed and
    fsynced, then os.replace'd over `path`. On any error (KeyboardInterrupt too) the temporary
    file is removed and `path` is untouched."""
    path = Path(path)
    temporary = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
    f = open(temporary, "xb")      # not mkstemp: its files are private (0600), open() follows the umask
    try:
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    return path


def non_finite(params):
    """The names of the parameters ({name: Tensor or array}) holding NaN or inf."""
    return [name for name, p in params.items()
            if not np.isfinite(np.asarray(p.data if isinstance(p, Tensor) else p)).all()]


def save_checkpoint(path, params, model=None):
    """Write `params` ({name: Tensor}) to `path` (.npz) atomically, recording the architecture's
    name. Parameters holding NaN or inf are refused (CheckpointError naming them), so a diverged
    run cannot overwrite a good checkpoint.

    The arrays are stored bit for bit (no compression, no conversion)."""
    model = model or models.model_name(params)
    bad = non_finite(params)
    if bad:
        raise CheckpointError(f"save_checkpoint: not saving {Path(path).name}: {', '.join(bad)} "
                              f"hold NaN or inf values")
    arrays = {name: np.asarray(p.data if isinstance(p, Tensor) else p) for name, p in params.items()}
    arrays[_META + "model"] = np.array(model)
    arrays[_META + "format"] = np.array(FORMAT_VERSION)
    # an open file: np.savez would otherwise append ".npz" to the name
    return atomic_write(path, lambda f: np.savez(f, **arrays))


def load_checkpoint(path, model=None):
    """-> (params, model_name): the parameters as Tensors with requires_grad=True (the buffers,
    batch norm's running statistics, with requires_grad=False).

    model: the architecture expected ("seed", "wide" or "bn"); None takes the one the file records.
    Raises FileNotFoundError for a missing file and CheckpointError for an unreadable file or a
    mismatch in the model, the parameter names or their shapes."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):   # a .npy file holds one bare array
            raise CheckpointError(f"checkpoint {path.name}: this is a single NumPy array (.npy), not a "
                                  f"checkpoint; pass the .npz file that 'tinygrad-edu train' or "
                                  f"save_checkpoint wrote")
        with archive:
            arrays = {name: archive[name] for name in archive.files}
    except Exception as e:    # a damaged zip or .npy header fails in many ways (zipfile, tokenize, ...)
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"checkpoint {path.name}: not a readable .npz file ({type(e).__name__}: {e})") from None

    recorded = str(arrays.pop(_META + "model")) if _META + "model" in arrays else None
    arrays.pop(_META + "format", None)
    if model is None:
        if recorded is None:
            raise CheckpointError(f"checkpoint {path.name}: it does not record its model; "
                                  f"pass the model name explicitly")
        model = recorded
    if model not in models.ARCHITECTURES:
        raise CheckpointError(f"checkpoint {path.name}: unknown model {model!r} "
                              f"(known: {', '.join(models.ARCHITECTURES)})")
    if recorded is not None and recorded != model:
        raise CheckpointError(f"checkpoint {path.name} holds a {recorded!r} model, not {model!r}")

    expected = models.param_shapes(model)
    problems = models.fit_problems(expected, {name: a.shape for name, a in arrays.items()})
    problems += [f"{name} has dtype {arrays[name].dtype}, expected floating point" for name, shape in expected.items()
                 if name in arrays and arrays[name].shape == shape and not np.issubdtype(arrays[name].dtype, np.floating)]
    if problems:
        raise CheckpointError(f"checkpoint {path.name} does not fit the {model!r} model: " + "; ".join(problems))
    params = {name: Tensor(arrays[name], requires_grad=not models.is_buffer(name), name=name) for name in expected}
    return params, model
