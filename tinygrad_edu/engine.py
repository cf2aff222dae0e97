"""The engine: a Tensor that records the graph, one primitive/VJP mechanism, and backward.

Everything differentiable in tinygrad_edu is a *primitive*: a NumPy function plus one
vector-Jacobian product (VJP) per positional input. Calling a primitive with Tensors runs the
NumPy function and, when gradients are wanted, stores `(primitive, inputs, params, scope)` on the
result. `backward` walks those records in reverse topological order and calls the VJPs.

VJPs are written with Tensor ops, so with `create_graph=True` the gradients are themselves
recorded and can be differentiated again. Without it, the VJPs run under `no_grad` and record
nothing. Two ways to watch backward: `Tensor.register_hook` (see or replace a gradient) and
`detect_anomaly()` (stop at the first NaN/inf, naming the line of user code that made the op).

The engine imports no op. The ops (tinygrad_edu.ops) are built on it; the only three it defines
itself are the ones its own bookkeeping needs: `sum_to` and `broadcast_to` (every VJP's result is
summed back to its input's shape, undoing broadcasting) and `astype` (and cast to its dtype).
"""
import contextlib
import functools
import gc
import inspect
import threading

import numpy as np

# detect_anomaly's messages: where an op was made, and which op is to blame (only in anomaly mode)
from .anomaly import anomaly_forward as _anomaly_forward, anomaly_gradient as _anomaly_gradient


class _Modes:
    """The switches every op reads. One set per thread: a thread inside `no_grad()` (or inside
    backward, which turns recording off while it runs the VJPs) must not stop another thread
    from recording its own graph."""
    __slots__ = ("grad_enabled", "anomaly", "scope")

    def __init__(self):
        self.grad_enabled = True   # False inside no_grad(): ops record no graph
        self.anomaly = False       # True inside detect_anomaly(): check every result for NaN/inf
        self.scope = None          # the innermost tinygrad_edu.scope() name, for draw_graph clusters


class _PerThread(threading.local):
    """Each thread's own _Modes (threading.local runs __init__ once in every thread). An op
    reads the thread-local once, then plain attributes: reading a threading.local attribute
    costs about 45 ns, a plain one about 7, and every op reads two or three of them."""

    def __init__(self):
        self.modes = _Modes()


_per_thread = _PerThread()


# --------------------------------------------------------------------------------------------
# Tensor
# --------------------------------------------------------------------------------------------
class Tensor:
    """An ndarray plus what autograd needs: `requires_grad`, `.grad`, and the op that made it."""

    # _origin (where detect_anomaly saw the op made) and _hooks (register_hook) are set only on
    # the tensors that need them; an unset slot costs the per-op path nothing
    __slots__ = ("data", "grad", "requires_grad", "name", "_ctx", "_retain_grad", "saved", "_origin", "_hooks",
                 "__weakref__")
    __array_ufunc__ = None    # `ndarray + Tensor` defers to Tensor.__radd__; np.exp(t) refuses

    def __init__(self, data, requires_grad=False, name=None):
        if isinstance(data, Tensor):
            data = data.data
        elif not isinstance(data, np.ndarray):
            data = np.asarray(data) if isinstance(data, np.generic) else _float32_array(data)
        if requires_grad and data.dtype.kind != "f":
            raise TypeError(f"Tensor: only floating-point tensors can require grad, got dtype "
                            f"{data.dtype} (convert with .astype(np.float32) first)")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._ctx = None          # (primitive, inputs, params, scope) for an op's result
        self._retain_grad = False
        self.saved = None         # residuals a `saves=True` primitive kept for its VJPs

    # ---- factories ---------------------------------------------------------------------------
    @staticmethod
    def zeros(*shape, dtype=np.float32, requires_grad=False):
        return Tensor(np.zeros(_shape_arg(shape), dtype), requires_grad)

    @staticmethod
    def ones(*shape, dtype=np.float32, requires_grad=False):
        return Tensor(np.ones(_shape_arg(shape), dtype), requires_grad)

    @staticmethod
    def randn(*shape, rng=None, dtype=np.float32, requires_grad=False):
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return Tensor(rng.standard_normal(_shape_arg(shape)).astype(dtype), requires_grad)

    # ---- plain attributes --------------------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)
    op = property(lambda self: self._ctx[0] if self._ctx else None, doc="the primitive that made this tensor")
    inputs = property(lambda self: self._ctx[1] if self._ctx else (), doc="the tensors that op read")
    params = property(lambda self: self._ctx[2] if self._ctx else {}, doc="the op's keyword parameters")
    scope = property(lambda self: self._ctx[3] if self._ctx else None)
    is_leaf = property(lambda self: self._ctx is None)

    def numpy(self):
        return self.data

    def item(self):
        return self.data.item()

    def detach(self):
        return Tensor(self.data)

    def retain_grad(self):
        """Keep `.grad` on this non-leaf after backward (leaves always keep theirs)."""
        if not self.requires_grad:
            raise RuntimeError("retain_grad: this tensor does not require grad, so backward never "
                               "reaches it (make it with requires_grad=True)")
        self._retain_grad = True
        return self

    def register_hook(self, fn):
        """Call `fn(gradient)` when backward has the gradient for this tensor, as PyTorch does: if
        it returns a Tensor, that replaces the gradient (in `.grad`, and in what flows on to the
        ops before); None keeps it. Hooks run in the order they were registered, once per backward
        with the gradient summed over all uses. Returns a handle whose `.remove()` unregisters it."""
        global _hooks_registered
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so backward never "
                               "reaches it (make it with requires_grad=True)")
        if not callable(fn):
            raise TypeError(f"register_hook: expected a function of the gradient, got {type(fn).__name__}")
        if getattr(self, "_hooks", None) is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = fn
        _hooks_registered = True
        return handle

    def __array__(self, dtype=None, copy=None):
        """NumPy's protocol: np.asarray(t) is t.data itself, np.array(t) a copy (copy=True), and
        copy=False refuses a dtype change, which cannot be done without one."""
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError(f"Tensor.__array__: cannot convert dtype {self.data.dtype} to {np.dtype(dtype)} "
                             f"without a copy (copy=False)")
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self):
        return len(self.data)

    def __bool__(self):
        return bool(self.data)

    def __float__(self):
        return float(self._one_number("float"))

    def __int__(self):
        return int(self._one_number("int"))

    def _one_number(self, op):
        """float(t), int(t): any one-element tensor, as in PyTorch (NumPy 2 takes only 0-d arrays)."""
        if self.data.size != 1:
            raise TypeError(f"{op}(): only a tensor with one element converts to a Python number; this "
                            f"one has shape {self.shape} (index it, or reduce it with .sum() or .mean())")
        return self.data.item()

    __hash__ = object.__hash__  # comparisons return Tensors, yet tensors stay usable as dict keys

    def __repr__(self):
        body = np.array2string(self.data, precision=4, threshold=20, separator=", ", prefix="Tensor(")
        extra = f", op={self.op.__name__}" if self._ctx else (", requires_grad=True" if self.requires_grad else "")
        name = f", name={self.name!r}" if self.name else ""
        return f"Tensor({body}, shape={self.shape}, dtype={self.dtype}{extra}{name})"

    # ---- backward ----------------------------------------------------------------------------
    def backward(self, gradient=None, create_graph=False):
        """Accumulate d(self)/d(leaf) into `.grad` of every leaf that requires grad."""
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(f"backward: gradient can only be implied for a scalar output, but this "
                                 f"tensor has shape {self.shape}; pass gradient= of that shape")
            gradient = Tensor(np.ones_like(self.data))
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of the ops "
                               "that made it has requires_grad=True, or it was made under no_grad)")
        gradient = _as_gradient(gradient, self, "backward")
        grads = _backprop([self], [gradient], create_graph, want=None)
        given = set()                         # the memory already given as a .grad: its owners' ids
        for t, g in grads.items():
            if g.data.dtype != t.data.dtype:  # a root gradient or a hook's result in another dtype
                g = astype(g, dtype=t.data.dtype) if create_graph else _wrap(g.data.astype(t.data.dtype))
            elif not create_graph and (g._ctx is not None or not g.data.flags.writeable
                                       or id(_owner(g.data)) in given or np.may_share_memory(g.data, gradient.data)):
                # each .grad a detached buffer of its own, as in PyTorch: a VJP may hand the same
                # array to two inputs (x + w) or a view of it (reshape, and its input's gradient,
                # both kept), and the caller's gradient= is theirs, not ours
                g = _wrap(np.array(g.data))
            given.add(id(_owner(g.data)))
            t.grad = g if t.grad is None else t.grad + g

    # operator methods (+, *, @, .sum(), ...) are attached by tinygrad_edu.functional


def _owner(array):
    """The array that owns a view's memory (NumPy points a view of a view at the owner), or itself."""
    return array if array.base is None else array.base


def _float32_array(data):
    """A Python scalar or (nested) list/tuple of numbers -> a float32 array. Anything else is a
    TypeError, as in PyTorch: NumPy would turn None into a NaN scalar, "1.5" into 1.5, a dict into
    an object array, and a ragged list into an error that names no op."""
    if data is None or isinstance(data, (str, bytes, dict, set, frozenset)):
        raise TypeError(f"Tensor: data must be a number, a (nested) list of numbers or an ndarray, "
                        f"got {type(data).__name__}")
    try:
        array = np.asarray(data)
    except ValueError:                          # NumPy: "setting an array element with a sequence"
        raise ValueError("Tensor: the nested lists are ragged (rows of different lengths, e.g. "
                         "[[1, 2], [3]]); every row must have the same length") from None
    if array.dtype == object and all(isinstance(v, int) for v in array.flat):
        array = np.array([float(v) for v in array.flat]).reshape(array.shape)   # ints beyond int64
    if array.dtype.kind not in "biuf":
        raise TypeError(f"Tensor: data must hold numbers, got elements of dtype {array.dtype} "
                        f"(from {type(data).__name__})")
    return array.astype(np.float32)


class RemovableHandle:
    """What register_hook returns: `.remove()` unregisters the hook (also `with handle:`)."""
    _next_id = 0

    def __init__(self, hooks):
        self._hooks, self.id = hooks, RemovableHandle._next_id
        RemovableHandle._next_id += 1

    def remove(self):
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


_hooks_registered = False   # backward looks for hooks only once some tensor has had one


def _run_hooks(t, g):
    for fn in list(t._hooks.values()):
        replaced = fn(g)
        if replaced is not None:
            if replaced.__class__ is not Tensor:
                raise TypeError(f"register_hook: a hook returned {type(replaced).__name__}; return a "
                                f"Tensor to replace the gradient, or None to keep it")
            if replaced.shape != g.shape:
                raise ValueError(f"register_hook: a hook returned a gradient of shape {replaced.shape} "
                                 f"for a tensor of shape {g.shape}")
            g = replaced
    return g


def _shape_arg(shape):
    """Factories take `zeros(2, 3)` or `zeros((2, 3))`."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _wrap(array):
    """A new Tensor around an ndarray, with none of __init__'s checks (for the per-op hot path)."""
    t = Tensor.__new__(Tensor)
    t.data = array
    t.grad = t.name = t._ctx = t.saved = None
    t.requires_grad = t._retain_grad = False
    return t


_scalar_constants = {}  # (value, type, dtype) -> constant Tensor: `x * 0.5`, `1 - y`, `lr * g` recur


def _lift(value, like):
    """A non-Tensor operand as a constant Tensor. A Python scalar is 'weak', as in NumPy: it takes
    the dtype of `like` (so `float32 * 0.1` stays float32 and `float64 * 0.1` stays float64)."""
    if isinstance(value, Tensor):
        return value
    if type(value) in (float, int, bool) and like is not None:
        key = (value, type(value), like.data.dtype)
        constant = _scalar_constants.get(key)
        if constant is None:
            dtype = like.data.dtype if like.data.dtype.kind in "fc" else np.result_type(like.data, value)
            constant = _wrap(np.asarray(value, dtype))
            constant.data.flags.writeable = False   # shared by every graph that uses this scalar
            # NaN never equals its key, and -0.0 equals 0.0: neither is worth a cache entry
            if len(_scalar_constants) < 4096 and value == value and (value or type(value) is not float):
                _scalar_constants[key] = constant
        return constant
    return _wrap(value if isinstance(value, np.ndarray) else np.asarray(value))


def _lift_all(args):
    """Constants among an op's inputs as Tensors; a Python scalar takes its dtype from the first
    floating-point Tensor input (else the first Tensor), as NumPy would."""
    if len(args) == 2 and args[0].__class__ is Tensor:     # x * 0.5: the common case, in short
        return args[0], _lift(args[1], args[0])
    like = None
    for a in args:
        if isinstance(a, Tensor) and (like is None or like.data.dtype.kind != "f"):
            like = a
    return tuple([a if isinstance(a, Tensor) else _lift(a, like) for a in args])


def _shape_error(prim, inputs, error):
    message = str(error)
    if not message.startswith(prim.__name__ + ":"):
        shapes = " and ".join(str(t.shape) for t in inputs)
        message = f"{prim.__name__}: {message} (input shapes {shapes})"
    return ValueError(message)


def _as_gradient(gradient, t, where):
    g = gradient if isinstance(gradient, Tensor) else Tensor(np.asarray(gradient, dtype=t.dtype))
    if g.shape != t.shape:
        raise ValueError(f"{where}: gradient has shape {g.shape} but the output has shape {t.shape}")
    return g


# --------------------------------------------------------------------------------------------
# Primitives and their VJPs
# --------------------------------------------------------------------------------------------
def primitive(fn, name=None, saves=False):
    """Make `fn(*arrays, **params) -> ndarray` an op on Tensors that records itself in the graph.

    saves=True: `fn` also takes `save=` (True when the result will be recorded for backward) and
    returns `(out, residuals)`: intermediate results its VJPs can reuse instead of computing them
    again (conv2d keeps its im2col columns), as PyTorch's `ctx.save_for_backward` and JAX's
    residuals. They are kept on the result as `ans.saved` only while gradients are recorded, and
    backward drops them once the op's VJPs have run, so a VJP must work without them (None)."""
    def prim(*inputs, **params):
        for a in inputs:
            if a.__class__ is not Tensor:
                inputs = _lift_all(inputs)
                break
        modes = _per_thread.modes
        record = False
        if modes.grad_enabled:
            for t in inputs:
                if t.requires_grad:
                    record = True
                    break
        try:
            if saves:
                out, residuals = fn(*[t.data for t in inputs], save=record, **params)
            # the two most common calls spelled out (x * y, x + 0.5; tanh(x)): on small arrays,
            # unpacking *args and **params costs about as much as NumPy's arithmetic
            elif len(inputs) == 2 and not params:
                out = fn(inputs[0].data, inputs[1].data)
            elif len(inputs) == 1 and not params:
                out = fn(inputs[0].data)
            else:
                out = fn(*[t.data for t in inputs], **params)
        except ValueError as e:  # NumPy's shape errors, told with the op's name and input shapes
            raise _shape_error(prim, inputs, e) from None
        if out.__class__ is not np.ndarray:
            out = np.asarray(out)
        result = Tensor.__new__(Tensor)        # _wrap(out), spelled out: this runs for every op
        result.data = out
        result.grad = result.name = result._ctx = result.saved = None
        result.requires_grad, result._retain_grad = record, False
        if record:
            result._ctx = (prim, inputs, params, modes.scope)
            if saves:
                result.saved = residuals
        if modes.anomaly:
            _anomaly_forward(result, prim, inputs)
        return result

    prim.__name__ = prim.__qualname__ = name or fn.__name__
    prim.__doc__ = fn.__doc__
    prim.fn = fn            # the NumPy forward
    prim.vjps = ()          # filled in by defvjp
    prim.rules = None       # the VJPs' formulas as text (what graphs and explain show)
    return prim


def defvjp(prim, *vjps, rules=None):
    """Register one VJP per positional input: `vjp(g, ans, *inputs, **params) -> Tensor` (or None
    for an input that is not differentiable). The engine sums each result back to its input's
    shape (undoing broadcasting) and casts it to its input's dtype, so a VJP is just the formula.

    `rules`: the formulas as text, one line per input (a tuple of strings; the last one repeats
    for an op with any number of inputs) or a function `(input index, result Tensor) -> text or
    lines` that fills in the op's own numbers. The backward graph shows them; without them it
    shows a lambda VJP's source."""
    prim.vjps = vjps
    prim.rules = rules
    return prim


def defvjp_argnum(prim, vjp, rules=None):
    """For ops with any number of inputs (concatenate, stack): `vjp(argnum, g, ans, *inputs, **params)`."""
    prim.vjps = _ArgnumVJPs(vjp)
    prim.rules = rules
    return prim


class _ArgnumVJPs:
    """prim.vjps of a defvjp_argnum primitive: vjps[i] is the one VJP with argnum i filled in."""
    any_number = True

    def __init__(self, vjp):
        self.vjp = vjp

    def __getitem__(self, i):
        return functools.partial(self.vjp, i)

    def __len__(self):
        return 1 << 30


# --------------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------------
def topological_order(roots, grad_only=True):
    """Every tensor reachable from `roots`, each after all the tensors it was computed from (for a
    program without branches, the order its ops ran in). With grad_only, only the tensors that
    require grad: the ones backward visits. Iterative depth-first search, so a 100,000-op chain
    needs no recursion; inputs are pushed in reverse so the first input is finished first."""
    order, visited = [], set()
    stack = list(reversed(roots))
    while stack:
        t = stack.pop()
        if t is None:                  # the marker below: t's inputs are done, so t goes next
            order.append(stack.pop())
            continue
        key = id(t)
        if key in visited:
            continue
        visited.add(key)
        stack.append(t)
        stack.append(None)
        ctx = t._ctx
        if ctx is not None:
            for x in reversed(ctx[1]):
                if (x.requires_grad or not grad_only) and id(x) not in visited:
                    stack.append(x)
    return order


def _backprop(roots, root_grads, create_graph, want):
    """Propagate `root_grads` from `roots` back through the graph.

    Returns {tensor: gradient} for the tensors in `want`, or, when `want` is None, for every leaf
    that requires grad and every non-leaf that called retain_grad()."""
    grads = {}  # id(tensor) -> gradient; ids are safe: the graph keeps every tensor alive
    for r, g in zip(roots, root_grads):
        grads[id(r)] = grads[id(r)] + g if id(r) in grads else g
    wanted = None if want is None else {id(t) for t in want}
    result = {}
    modes = _per_thread.modes
    previous, modes.grad_enabled = modes.grad_enabled, create_graph
    # detect_anomaly: blame the op whose VJP went wrong, not the ops the VJP is written with
    check_finite, modes.anomaly = modes.anomaly, False
    hooks = _hooks_registered
    # The graph holds no reference cycles, and backward makes a few objects per op: Python's
    # cyclic collector would walk the whole live graph again and again for nothing (~10% of a
    # long chain's backward). Reference counting still frees everything as usual.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for t in reversed(topological_order(roots)):
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if hooks and getattr(t, "_hooks", None):
                g = _run_hooks(t, g)     # all of t's gradient has arrived: hooks may replace it
            if wanted is None:
                if t._ctx is None or t._retain_grad:
                    result[t] = g
            elif id(t) in wanted:
                result[t] = g
            if t._ctx is None:
                continue
            prim, inputs, params, _ = t._ctx
            vjps = prim.vjps
            for i, x in enumerate(inputs):
                if not x.requires_grad or i >= len(vjps) or vjps[i] is None:
                    continue
                gx = vjps[i](g, t, *inputs, **params)
                if gx.__class__ is not Tensor or gx.data.shape != x.data.shape or gx.data.dtype != x.data.dtype:
                    gx = _fit_gradient(gx, x, prim)
                if check_finite:
                    _anomaly_gradient(gx, i, t, g)
                key = id(x)
                before = grads.get(key)
                if before is not None:   # x is used more than once: its gradients add up. Only
                    # create_graph records the sum; else it is NumPy's (an op costs more on small arrays)
                    gx = before + gx if create_graph else _wrap(np.asarray(before.data + gx.data))
                grads[key] = gx
            t.saved = None        # the residuals have served: free them (a second backward recomputes)
    finally:
        modes.grad_enabled, modes.anomaly = previous, check_finite
        if collecting:
            gc.enable()
    return result


def _fit_gradient(gx, x, prim):
    """A VJP's result, summed back to x's shape (undo broadcasting) and cast to x's dtype."""
    if gx.__class__ is not Tensor:
        gx = Tensor(np.asarray(gx))
    if gx.shape != x.shape:
        try:
            gx = sum_to(gx, shape=x.shape)
        except ValueError:
            raise ValueError(f"{prim.__name__}: a VJP returned a gradient of shape {gx.shape} for an input "
                             f"of shape {x.shape}; it must be that shape or a broadcast of it") from None
    if gx.dtype != x.dtype:
        gx = astype(gx, dtype=x.dtype)
    return gx


def grad(outputs, inputs, grad_outputs=None, create_graph=False):
    """d(outputs)/d(inputs) as a tuple of Tensors, without touching any `.grad`."""
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    inputs = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, (Tensor, np.ndarray)):
        grad_outputs = [grad_outputs]
    else:
        grad_outputs = list(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: got {len(outputs)} outputs but {len(grad_outputs)} grad_outputs; give one "
                         f"per output (None for a scalar output)")
    root_grads = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.data.size != 1:
                raise ValueError(f"grad: grad_outputs is needed for a non-scalar output of shape {out.shape}")
            g = Tensor(np.ones_like(out.data))
        root_grads.append(_as_gradient(g, out, "grad"))
    found = _backprop(outputs, root_grads, create_graph, want=inputs)
    result = []
    for x in inputs:
        g = found.get(x)
        if g is None:
            g = Tensor(np.zeros_like(x.data))
        elif not create_graph:
            g = Tensor(g.data)
        result.append(g)
    return tuple(result)


# --------------------------------------------------------------------------------------------
# Modes
# --------------------------------------------------------------------------------------------
class no_grad(contextlib.ContextDecorator):
    """`with no_grad():`, `@no_grad()` or `@no_grad`: ops inside record no graph. Nestable, and
    per thread: one decorated function may run (and recurse) in several threads at once, so the
    modes to restore are kept on a stack of each thread's own."""

    _ENABLED = False

    def __new__(cls, func=None):
        self = super().__new__(cls)
        self._saved = threading.local()
        return self(func) if callable(func) else self

    def __enter__(self):
        stack = self._saved.__dict__.setdefault("stack", [])
        stack.append(_per_thread.modes.grad_enabled)
        _per_thread.modes.grad_enabled = self._ENABLED
        return self

    def __exit__(self, *exc):
        _per_thread.modes.grad_enabled = self._saved.stack.pop()
        return False

    def __call__(self, func):
        """As a decorator. A generator function's body runs between its yields, each time the
        caller resumes it: the mode is set around every resumption (PyTorch's rule), not only
        around the call that makes the generator."""
        if not inspect.isgeneratorfunction(func):
            return super().__call__(func)

        @functools.wraps(func)
        def generator(*args, **kwargs):
            gen = func(*args, **kwargs)
            try:
                with self:
                    response = gen.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with self:
                            gen.close()
                        raise
                    except BaseException as error:        # thrown in by the caller: pass it on
                        with self:
                            response = gen.throw(error)
                    else:
                        with self:
                            response = gen.send(request)
            except StopIteration as stop:
                return stop.value
        return generator


class enable_grad(no_grad):
    """The opposite of no_grad, for use inside it."""

    _ENABLED = True


@contextlib.contextmanager
def detect_anomaly():
    """Raise FloatingPointError at the first op whose result or gradient has NaN or inf. Inside,
    each op also records the line of your code that made it (the innermost frame outside
    tinygrad_edu), and the error names that line and whether the op's inputs were already bad.
    Outside, the per-op cost is one flag read."""
    modes = _per_thread.modes
    saved, modes.anomaly = modes.anomaly, True
    try:
        yield
    finally:
        modes.anomaly = saved


_SCOPED_ERRORS = (ValueError, TypeError, IndexError, RuntimeError, np.exceptions.AxisError)


@contextlib.contextmanager
def scope(name):
    """Name the ops made inside (nested scopes join with '/'); draw_graph boxes each scope."""
    modes = _per_thread.modes
    saved = modes.scope
    modes.scope = name if saved is None else f"{saved}/{name}"
    try:
        yield
    except (ValueError, TypeError, IndexError, RuntimeError) as error:
        # a learner's model fails deep inside a layer: say which layer ("fc1: linear: x (10, 150)
        # @ weight.T ..."), once, with the innermost scope's full name. Only the plain types (and
        # NumPy's AxisError) are made again: another subclass may take other arguments
        if type(error) in _SCOPED_ERRORS and not getattr(error, "_scoped", False) \
                and len(error.args) == 1 and isinstance(error.args[0], str):
            named = type(error)(f"{modes.scope}: {error.args[0]}")
            named._scoped = True
            raise named.with_traceback(error.__traceback__) from None
        raise
    finally:
        modes.scope = saved


def is_grad_enabled():
    return _per_thread.modes.grad_enabled


# --------------------------------------------------------------------------------------------
# The three primitives the engine's own bookkeeping needs (_fit_gradient)
# --------------------------------------------------------------------------------------------
def _sum_to(x, shape):
    """Sum x down to `shape`, the reverse of broadcasting: over the extra leading axes, and over
    the axes where `shape` has 1 and x does not."""
    lead = x.ndim - len(shape)
    if lead < 0 or any(s != 1 and s != n for s, n in zip(shape, x.shape[lead:])):
        raise ValueError(f"sum_to: shape {x.shape} does not reduce to {shape} (not a broadcast of it)")
    axes = tuple(range(lead)) + tuple(lead + i for i, s in enumerate(shape) if s == 1 and x.shape[lead + i] != 1)
    return np.sum(x, axis=axes, keepdims=True).reshape(shape) if axes else x.reshape(shape)


# broadcasting and summing back are each other's transposes
sum_to = primitive(_sum_to, "sum_to")
broadcast_to = primitive(np.broadcast_to, "broadcast_to")
defvjp(sum_to, lambda g, ans, x, shape: broadcast_to(g, shape=x.shape),
       rules=("broadcast g back to x's shape",))
defvjp(broadcast_to, lambda g, ans, x, shape: sum_to(g, shape=x.shape),
       rules=("sum g back to x's shape",))

astype = primitive(lambda x, dtype: x.astype(dtype), "astype")
defvjp(astype, lambda g, ans, x, dtype: astype(g, dtype=x.dtype), rules=("cast g back to x's dtype",))
