"""Check VJPs against central finite differences, in float64.

For small inputs the whole Jacobian is compared, element by element. For large ones that would
take too many forward passes, so random directions are compared instead: with a random output
weighting v and input direction u, the VJPs give <v, J u> = <J^T v, u> exactly, and finite
differences give <v, (f(x + eps u) - f(x - eps u)) / 2 eps>. A failing direction is then traced
back to one input element, so the message can name it.
"""
import numpy as np

from ..engine import Tensor, grad
from ..functional import concatenate

FULL_JACOBIAN_LIMIT = 512   # elements (inputs, and outputs) up to which the whole Jacobian is compared


class GradcheckError(AssertionError):
    """A VJP disagrees with finite differences; the message names the input and the element."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, second_order=False, directions=6, seed=0):
    """True if fn's VJPs match finite differences for every input that requires grad (or, when
    none does, every floating-point input); else raises GradcheckError naming input and element.

    `second_order=True` also checks the VJPs' own VJPs (see gradgradcheck)."""
    inputs = _float64_copies(inputs)
    checked = [i for i, x in enumerate(inputs) if x.requires_grad]
    out = fn(*inputs)
    _check_output(out)
    rng = np.random.default_rng(seed)
    total = sum(inputs[i].size for i in checked)
    if total <= FULL_JACOBIAN_LIMIT and out.size <= FULL_JACOBIAN_LIMIT:
        _check_full_jacobian(fn, inputs, checked, out, eps, atol, rtol)
    else:
        for _ in range(directions):
            _check_direction(fn, inputs, checked, out, rng, eps, atol, rtol)
    if second_order:
        gradgradcheck(fn, inputs, eps=eps, atol=atol, rtol=rtol, directions=directions, seed=seed)
    return True


def gradgradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, directions=6, seed=0):
    """Second order: gradcheck the function (inputs, v) -> VJPs of fn at v, computed with
    create_graph=True. It checks the VJPs' derivatives with respect to the inputs (Hessian-vector
    products) and to the cotangent v."""
    inputs = _float64_copies(inputs)
    out = fn(*inputs)
    _check_output(out)
    v = Tensor(np.random.default_rng(seed + 1).standard_normal(out.shape), requires_grad=True, name="v")
    checked = [x for x in inputs if x.requires_grad]

    def vjps(*args):
        *xs, v = args
        live = [x for x in xs if x.requires_grad]
        grads = grad(fn(*xs), live, grad_outputs=v, create_graph=True)
        return concatenate([g.reshape(-1) for g in grads])

    if not checked:
        return True
    return gradcheck(vjps, list(inputs) + [v], eps=eps, atol=atol, rtol=rtol, directions=directions, seed=seed)


def _float64_copies(inputs):
    tensors = [x if isinstance(x, Tensor) else Tensor(np.asarray(x)) for x in inputs]
    any_marked = any(x.requires_grad for x in tensors)
    copies = []
    for x in tensors:
        floating = np.issubdtype(x.dtype, np.floating)
        data = x.data.astype(np.float64) if floating else x.data.copy()
        copies.append(Tensor(data, requires_grad=floating and (x.requires_grad or not any_marked), name=x.name))
    return copies


def _check_output(out):
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if not out.requires_grad:
        raise GradcheckError("gradcheck: fn's output does not depend on any input that requires grad")


def _label(inputs, i):
    return f"input {i}" + (f" ({inputs[i].name!r})" if inputs[i].name else "") + f" of shape {inputs[i].shape}"


def _numeric(fn, inputs, i, direction, eps):
    """(f(x + eps*d) - f(x - eps*d)) / 2 eps for input i moved along `direction`."""
    x = inputs[i].data
    original = x.copy()
    try:
        x += eps * direction
        plus = np.array(fn(*inputs).data, dtype=np.float64)
        x[...] = original - eps * direction
        minus = np.array(fn(*inputs).data, dtype=np.float64)
    finally:
        x[...] = original
    return (plus - minus) / (2 * eps)


def _analytic(out, inputs, checked, v):
    grads = grad(out, [inputs[i] for i in checked], grad_outputs=Tensor(v))
    return {i: g.data.astype(np.float64) for i, g in zip(checked, grads)}


def _fail(inputs, i, where, numeric, analytic, atol, rtol):
    raise GradcheckError(
        f"gradcheck: the gradient of {_label(inputs, i)} disagrees with finite differences at "
        f"{where}: numeric {numeric:.10g}, analytic {analytic:.10g} "
        f"(|difference| {abs(numeric - analytic):.3g} > atol + rtol*|numeric| = "
        f"{atol + rtol * abs(numeric):.3g})")


def _check_full_jacobian(fn, inputs, checked, out, eps, atol, rtol):
    # the analytic Jacobian, one row per output element (one VJP each) ...
    rows = [_analytic(out, inputs, checked, np.eye(1, out.size, k).reshape(out.shape)) for k in range(out.size)]
    for i in checked:
        x = inputs[i]
        analytic = np.stack([row[i].reshape(-1) for row in rows])               # (out.size, x.size)
        # ... and the numeric one, one column per input element (two forward passes each)
        numeric = np.stack([_numeric(fn, inputs, i, np.eye(1, x.size, j).reshape(x.shape), eps).reshape(-1)
                            for j in range(x.size)], axis=1)
        bad = np.argwhere(~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric)))
        if len(bad):
            k, j = bad[0]
            element = tuple(int(e) for e in np.unravel_index(j, x.shape))
            out_at = f" (output element {tuple(int(e) for e in np.unravel_index(k, out.shape))})" if out.size > 1 else ""
            _fail(inputs, i, f"element {element}{out_at}", numeric[k, j], analytic[k, j], atol, rtol)


def _check_direction(fn, inputs, checked, out, rng, eps, atol, rtol):
    v = rng.standard_normal(out.shape)
    analytic = _analytic(out, inputs, checked, v)
    for i in checked:
        u = rng.standard_normal(inputs[i].shape)
        a = float(np.sum(analytic[i] * u))
        n = float(np.sum(v * _numeric(fn, inputs, i, u, eps)))
        if not abs(a - n) <= atol + rtol * abs(n):
            _locate(fn, inputs, i, v, analytic[i], eps, atol, rtol)
            _fail(inputs, i, "a random direction (no single element singled out)", n, a, atol, rtol)


def _locate(fn, inputs, i, v, analytic, eps, atol, rtol):
    """Find one element of input i whose gradient of <v, f> disagrees, to name it."""
    x = inputs[i]
    for flat in range(x.size):
        d = np.zeros(x.size)
        d[flat] = 1.0
        n = float(np.sum(v * _numeric(fn, inputs, i, d.reshape(x.shape), eps)))
        a = float(analytic.reshape(-1)[flat])
        if not abs(a - n) <= atol + rtol * abs(n):
            element = tuple(int(e) for e in np.unravel_index(flat, x.shape))
            _fail(inputs, i, f"element {element} (output weighted by a random v)", n, a, atol, rtol)
