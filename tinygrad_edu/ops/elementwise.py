"""Elementwise primitives, each with its VJPs (and their formulas as text) beside it.

Read each block as a formula: `defvjp(op, dL/dx, dL/dy)` where `g` is dL/d(output) and `ans` is
the output. The engine undoes broadcasting (it sums each VJP's result back to its input's shape)
and casts to the input's dtype, so the formulas here stay as short as on paper. Every VJP is built
from these same ops, so gradients can be differentiated again (`create_graph=True`).
"""
import math

import numpy as np
import scipy.special

from ..engine import Tensor, defvjp, primitive
from ..kernels import elementwise as kernels

# ---- two inputs (broadcast together) ----------------------------------------------------------
add = primitive(np.add, "add")
defvjp(add, lambda g, ans, x, y: g,
            lambda g, ans, x, y: g, rules=("g", "g"))

sub = primitive(np.subtract, "sub")
defvjp(sub, lambda g, ans, x, y: g,
            lambda g, ans, x, y: -g, rules=("g", "-g"))

mul = primitive(np.multiply, "mul")
defvjp(mul, lambda g, ans, x, y: g * y,
            lambda g, ans, x, y: g * x, rules=("g * y", "g * x"))

div = primitive(np.true_divide, "div")
defvjp(div, lambda g, ans, x, y: g / y,
            lambda g, ans, x, y: -g * ans / y,           # d(x/y)/dy = -x/y^2 = -ans/y
       rules=("g / y", "-g * ans / y"))

power = primitive(np.power, "pow")


# At x = 0 the textbook formulas meet 0 * inf. The rule there is PyTorch's (checked with torch):
#   d/dx x**y = y * x**(y-1), but 0 where y == 0 (x**0 is the constant 1, also at x = 0; only
#     x = 0 needs the mask, so elsewhere the formula, and its derivative in y, stay exact);
#   d/dy x**y = x**y * log(x), but 0 where x == 0 and y >= 0 (0**y is flat in y there);
#   for x == 0 and y < 0 it stays x**y * log(x) = inf * -inf = -inf (at x = -0.0: +inf).
# The masked places also get a harmless operand (exponent 0, log(1)), so that no inf or NaN is
# made and then thrown away, and so that the second derivative there is 0 too.
def _pow_vjp_x(g, ans, x, y):
    flat = (y.data == 0) & (x.data == 0)
    if not flat.any():
        return g * y * x ** (y - 1)
    return where_(flat, 0, g * y * x ** (where_(flat, 1, y) - 1))


def _pow_vjp_y(g, ans, x, y):
    flat = (x.data == 0) & (y.data >= 0)
    if not flat.any():
        return g * ans * log(x)
    return where_(flat, 0, g * ans * log(where_(flat, 1, x)))


defvjp(power, _pow_vjp_x, _pow_vjp_y,
       rules=("g * y * x**(y-1)  (0 where y = 0, also at x = 0)", "g * ans * log(x)  (0 where x = 0 and y >= 0)"))


def _tie_share(x, y, dtype):
    """How much of the gradient of max(x, y) goes to x: 1 where x wins, 1/2 on a tie, 0 where
    y wins, as PyTorch. Where either is NaN (the result is NaN) neither wins: both get all of it,
    as in PyTorch, so the NaN's gradient is not silently lost."""
    return Tensor((1.0 - (x.data < y.data) - 0.5 * (x.data == y.data)).astype(dtype))


maximum = primitive(np.maximum, "maximum")
defvjp(maximum, lambda g, ans, x, y: g * _tie_share(x, y, g.dtype),
                lambda g, ans, x, y: g * _tie_share(y, x, g.dtype),
       rules=("g where x > y (ties: half; NaN: all)", "g where y > x (ties: half; NaN: all)"))

where_ = primitive(np.where, "where")
defvjp(where_, None,                                          # the condition has no gradient
               lambda g, ans, cond, x, y: where_(cond, g, 0),
               lambda g, ans, cond, x, y: where_(cond, 0, g),
       rules=("(none: a condition)", "where(cond, g, 0)", "where(cond, 0, g)"))


# ---- one input --------------------------------------------------------------------------------
neg = primitive(np.negative, "neg")
defvjp(neg, lambda g, ans, x: -g, rules=("-g",))

exp = primitive(np.exp, "exp")
defvjp(exp, lambda g, ans, x: g * ans, rules=("g * ans",))

log = primitive(np.log, "log")
defvjp(log, lambda g, ans, x: g / x, rules=("g / x",))

sqrt = primitive(np.sqrt, "sqrt")
defvjp(sqrt, lambda g, ans, x: g / (2 * ans), rules=("g / (2 * ans)",))

tanh = primitive(np.tanh, "tanh")
defvjp(tanh, lambda g, ans, x: tanh_vjp(g, ans), rules=("g * (1 - ans^2)",))

# tanh's VJP, g * (1 - ans^2), as one op of its own rather than three: backward runs it once per
# tanh, and on small arrays each op's bookkeeping costs more than its arithmetic. It is linear in
# g, so its own VJP in g is itself; in ans it is the product rule (create_graph=True uses both).
tanh_vjp = primitive(lambda g, ans: g * (1 - ans * ans), "tanh_vjp")
defvjp(tanh_vjp, lambda u, out, g, ans: tanh_vjp(u, ans),
                 lambda u, out, g, ans: u * g * ans * -2, rules=("u * (1 - ans^2)", "-2 * u * g * ans"))


def _in_x_dtype(special):
    """A SciPy special function whose result has x's float dtype: SciPy computes float16 in float64."""
    def fn(x):
        out = special(x)
        return out.astype(x.dtype) if out.dtype != x.dtype and x.dtype.kind == "f" else out
    fn.__name__ = special.__name__
    return fn


sigmoid = primitive(_in_x_dtype(scipy.special.expit), "sigmoid")   # stable for large |x|
defvjp(sigmoid, lambda g, ans, x: g * ans * (1 - ans), rules=("g * ans * (1 - ans)",))

relu = primitive(kernels.relu, "relu")
relu_grad = primitive(kernels.relu_grad, "relu_grad")              # g * (ans > 0), in one pass
defvjp(relu, lambda g, ans, x: relu_grad(g, ans), rules=("g * (ans > 0)",))   # the kink at 0 gets slope 0
# relu_grad is linear in g (the same mask again); the mask is flat in ans: no gradient there
defvjp(relu_grad, lambda u, out, g, ans: relu_grad(u, ans), None, rules=("u * (ans > 0)", "(none: a mask)"))

absolute = primitive(np.abs, "abs")
defvjp(absolute, lambda g, ans, x: g * sign(x), rules=("g * sign(x)",))


def sign(x):
    """-1, 0 or 1 elementwise; piecewise constant, so a constant (it never requires grad)."""
    return Tensor(np.sign(x.data))


# ==============================================================================================
# More elementwise ops (PyTorch's gradient conventions at kinks and ties)
# ==============================================================================================
minimum = primitive(np.minimum, "minimum")
defvjp(minimum, lambda g, ans, x, y: g * _tie_share(y, x, g.dtype),      # x gets it where x < y
                lambda g, ans, x, y: g * _tie_share(x, y, g.dtype),
       rules=("g where x < y (ties: half)", "g where y < x (ties: half)"))

rsqrt = primitive(lambda x: 1 / np.sqrt(x), "rsqrt")
defvjp(rsqrt, lambda g, ans, x: g * -0.5 * ans * ans * ans, rules=("-g * ans^3 / 2",))   # d x^-1/2 = -x^-3/2 / 2

log2 = primitive(np.log2, "log2")
defvjp(log2, lambda g, ans, x: g / (x * math.log(2)), rules=("g / (x ln 2)",))

exp2 = primitive(np.exp2, "exp2")
defvjp(exp2, lambda g, ans, x: g * ans * math.log(2), rules=("g * ans * ln 2",))

sin = primitive(np.sin, "sin")
cos = primitive(np.cos, "cos")
defvjp(sin, lambda g, ans, x: g * cos(x), rules=("g * cos(x)",))
defvjp(cos, lambda g, ans, x: -g * sin(x), rules=("-g * sin(x)",))

tan = primitive(np.tan, "tan")
defvjp(tan, lambda g, ans, x: g * (1 + ans * ans), rules=("g * (1 + ans^2)",))

erf = primitive(_in_x_dtype(scipy.special.erf), "erf")
defvjp(erf, lambda g, ans, x: g * (2 / math.sqrt(math.pi)) * exp(-x * x), rules=("g * 2/sqrt(pi) * exp(-x^2)",))

# softplus(x) = log(1 + e^x), computed as logaddexp(0, x): finite for any x. Its slope is sigmoid.
softplus = primitive(lambda x: np.logaddexp(0, x), "softplus")
defvjp(softplus, lambda g, ans, x: g * sigmoid(x), rules=("g * sigmoid(x)",))


def _zeros_like(x):
    return Tensor(np.zeros_like(x.data))


def _piecewise_constant(fn, name):
    """An op whose slope is 0 wherever it has one (floor, sign, ...): PyTorch gives a zero
    gradient, so do we (not an error: x + x.round().detach()-style code relies on it)."""
    prim = primitive(fn, name)
    defvjp(prim, lambda g, ans, x: _zeros_like(x), rules=("0 (piecewise constant)",))
    return prim


sign_ = _piecewise_constant(np.sign, "sign")
floor = _piecewise_constant(np.floor, "floor")
ceil = _piecewise_constant(np.ceil, "ceil")
trunc = _piecewise_constant(np.trunc, "trunc")
round_ = _piecewise_constant(np.round, "round")       # halves to even, as torch.round


def _not_differentiable(name, symbol):
    def vjp(g, ans, x, y):
        raise RuntimeError(f"{name}: {symbol} is not differentiable (its result is piecewise constant "
                           f"in one input and jumps in the other), so backward cannot pass through it; "
                           f"use .detach() on its inputs, or an op that has a gradient")
    return vjp


floordiv = primitive(np.floor_divide, "floordiv")
defvjp(floordiv, _not_differentiable("floordiv", "x // y"), _not_differentiable("floordiv", "x // y"),
       rules=("(not differentiable)", "(not differentiable)"))
mod = primitive(np.mod, "mod")                         # Python's sign rule: the result has y's sign
defvjp(mod, _not_differentiable("mod", "x % y"), _not_differentiable("mod", "x % y"),
       rules=("(not differentiable)", "(not differentiable)"))


def _inside(x, lo, hi, strict):
    """The elements that pass the gradient: within [lo, hi] (clamp) or (lo, hi) (hardtanh)."""
    keep = np.ones(x.shape, bool)
    if lo is not None:
        keep &= (x.data > lo) if strict else (x.data >= lo)
    if hi is not None:
        keep &= (x.data < hi) if strict else (x.data <= hi)
    return keep


# clamp passes g where lo <= x <= hi (boundaries included), hardtanh only strictly inside: that
# is what PyTorch does for each (relu6 is hardtanh(0, 6), so relu6'(0) = 0, but clamp(0, 6)'(0) = 1).
clamp = primitive(lambda x, lo, hi: np.clip(x, lo, hi), "clamp")      # (F.clamp asks for lo or hi)
defvjp(clamp, lambda g, ans, x, lo, hi: where_(_inside(x, lo, hi, strict=False), g, 0),
       rules=("g where lo <= x <= hi",))
hardtanh = primitive(lambda x, lo, hi: np.clip(x, lo, hi), "hardtanh")
defvjp(hardtanh, lambda g, ans, x, lo, hi: where_(_inside(x, lo, hi, strict=True), g, 0),
       rules=("g where lo < x < hi",))

leaky_relu = primitive(lambda x, slope: np.where(x > 0, x, x * np.asarray(slope, x.dtype)), "leaky_relu")
defvjp(leaky_relu, lambda g, ans, x, slope: g * Tensor(np.where(x.data > 0, 1, slope).astype(g.dtype)),
       rules=("g * (1 if x > 0 else slope)",))


def _hardswish(x):
    return x * np.clip(x + 3, 0, 6) / 6


# slope 0 for x <= -3, x/3 + 1/2 in between, 1 from 3 on (PyTorch's choices at the two kinks)
hardswish = primitive(_hardswish, "hardswish")
defvjp(hardswish, lambda g, ans, x: where_(x.data <= -3, 0, where_(x.data < 3, g * (x / 3 + 0.5), g)),
       rules=("g * (0 if x <= -3, x/3 + 1/2 if x < 3, else 1)",))
