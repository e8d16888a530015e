"""stefast's kernels as differentiable PyTorch operations (needs ``stefast[torch]``).

Import it as ``from stefast import torch as st`` (``import stefast`` does not
import PyTorch). Every operation is a ``torch.library.custom_op`` in the
``stefast`` namespace, with a fake (meta) implementation for
``torch.compile`` and a registered autograd formula:

=====================================  ==============================================
``binarize(x, ste="relu")``            sigma(x) = 1[x > 0]; backward ``grad * mu'(x)``
``sign(x, ste="ste_sign")``            sign with sign(0) = +1; backward ``grad * mu'(x)``
``quantized_relu(x, bits, alpha,       b-bit quantized ReLU; backward the straight-
ste="clipped_relu", *, rounding,       through grad_x and the alpha-gradient of
alpha_grad)``                          :func:`stefast.quantized_relu_grad`
``loss(Z, v, w, v_star, w_star,        the two-layer model's batch-mean loss; backward
ste="relu")``                          the exact grad_v and the coarse grad_w of
                                       :func:`stefast.loss_and_grads`
=====================================  ==============================================

Forward and backward call the same C kernels as the NumPy API and give its
bits: a result equals the NumPy function's on ``t.numpy()`` exactly.

Tensors: CPU, float32 or float64; other devices and dtypes raise (move them
with ``.cpu()``, convert them with ``.float()`` / ``.double()``). A contiguous
tensor is handed to the kernel as a NumPy view of its memory and the result is
written into a new tensor's memory (no copy). A non-contiguous tensor (a
transpose, a slice with a step, an expanded gradient such as the one
``y.sum().backward()`` sends) is first copied with ``.contiguous()``; results
are always contiguous.

Surrogates: a custom operation's arguments are tensors, numbers and strings,
so ``ste`` travels as a string. ``binarize`` and ``sign`` take any name of
:func:`stefast.surrogates.registry` (``"relu"``, ``"swish_sign"``, ...) or a
``stefast.surrogates`` object (``surrogates.swish_sign(2.0)``), which goes
through the operation as its ``repr`` and is rebuilt on the other side; a
plain Python callable cannot be (the C kernels never call Python) and raises
ValueError. ``quantized_relu`` takes the names of
:func:`stefast.quantized_relu_grad` (``"identity"``, ``"relu"``,
``"clipped_relu"``).

A straight-through backward is by design not the derivative of the forward
(that is 0 almost everywhere), so ``torch.autograd.gradcheck`` does not apply.

Examples
--------
Algorithm 1 (coarse gradient descent on a fixed training set) as an ordinary
PyTorch loop:

>>> import numpy as np, torch, stefast
>>> from stefast import torch as st
>>> rng = np.random.default_rng(0)
>>> Z = torch.from_numpy(rng.standard_normal((512, 8, 5)))
>>> v_star, w_star = torch.ones(8, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
>>> v = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(8)))
>>> w = torch.nn.Parameter(torch.from_numpy(rng.standard_normal(5)))
>>> opt = torch.optim.SGD([v, w], lr=0.1)
>>> for step in range(200):
...     opt.zero_grad()
...     loss = st.loss(Z, v, w, v_star, w_star, ste="relu")
...     loss.backward()          # v.grad: exact dl/dv, w.grad: the coarse gradient
...     opt.step()
>>> bool(loss < 0.05)
True
"""

import ast
import functools
from typing import Optional

import numpy as np

from stefast import _core
from stefast import _validation as val
from stefast import kernels, quantized, surrogates
from stefast.surrogates import c_argument
from stefast._optional import require

torch = require("torch", "stefast.torch", extra="torch")

__all__ = ["binarize", "sign", "quantized_relu", "loss"]

_FLOAT_DTYPES = (torch.float32, torch.float64)
_SHAPE_DEVICES = ("cpu", "meta")  # where the fake implementations compute shapes


# ---- tensors in and out ---------------------------------------------------

def _check_tensor(t, name, op, devices=("cpu",)):
    """A CPU float32/float64 tensor, or a TypeError/ValueError saying what was received.

    The fake implementations also take "meta" (shapes only)."""
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"stefast.torch.{op}: {name} must be a torch.Tensor, "
                        f"got {type(t).__name__}")
    if t.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"stefast.torch.{op}: {name} must be float32 or float64, got {t.dtype} "
                        f"(convert it with .float() or .double())")
    if t.device.type not in devices:
        raise ValueError(f"stefast.torch.{op}: {name} must be on the CPU (stefast's kernels "
                         f"are CPU code), got a tensor on {t.device} (move it with .cpu())")
    return t


def _check_same_dtype(op, **tensors):
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) > 1:
        got = ", ".join(f"{k} {t.dtype}" for k, t in tensors.items())
        raise TypeError(f"stefast.torch.{op}: the tensors must share one dtype; got {got}")


def _as_numpy(t):
    """A NumPy view of t's memory (of a contiguous copy if t is not contiguous)."""
    return t.detach().contiguous().numpy()


def _new_like(t):
    """A new contiguous tensor of t's shape and dtype, and its NumPy view."""
    out = torch.empty(t.shape, dtype=t.dtype, device=t.device)
    return out, (out.numpy() if out.device.type == "cpu" else None)


# ---- surrogates as strings ------------------------------------------------

# the families a surrogate's repr may name (stefast.surrogates functions)
_FAMILIES = frozenset(("window", "ste_sign", "ste_heaviside", "approx_sign", "swish_sign",
                       "tanh", "sigmoid", "piecewise_polynomial"))


# The argument checks depend on their (constant) arguments only: torch.compile
# runs them once while tracing instead of tracing into NumPy and the registry.
_trace_constant = torch.compiler.assume_constant_result


@_trace_constant
def _surrogate_spec(ste, op):
    """The string the custom operation carries for ``ste`` (checked here, eagerly)."""
    if isinstance(ste, str):
        _surrogate_from_spec(ste)  # raises for a name or repr that is not a surrogate
        return ste
    if val.is_registry_surrogate(ste):
        return ste.named or repr(ste)
    raise ValueError(
        f"stefast.torch.{op}: ste must be a name in stefast.surrogates.registry() "
        f"({', '.join(map(repr, surrogates.registry()))}) or a stefast.surrogates object; "
        f"got {type(ste).__name__}. A PyTorch custom operation carries strings, not Python "
        f"callables, and the C kernels never call Python: express the surrogate with a "
        f"stefast.surrogates family (window, piecewise_polynomial, ...) or write a "
        f"torch.autograd.Function for it")


class _Infinities(ast.NodeTransformer):
    """inf and nan (as repr prints them) to constants, for ast.literal_eval."""

    def visit_Name(self, node):
        if node.id in ("inf", "nan"):
            return ast.copy_location(ast.Constant(float(node.id)), node)
        raise ValueError(f"unexpected name {node.id!r}")


@functools.lru_cache(maxsize=256)
def _surrogate_from_spec(spec):
    """What stefast.ste_grad takes for a spec: a name in STES or a registry object."""
    registry = surrogates.registry()
    if spec in registry:
        return val.check_ste(registry[spec])
    try:
        call = ast.parse(spec, mode="eval").body
        if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                and call.func.id in _FAMILIES):
            raise ValueError("not a stefast.surrogates family call")
        args = [ast.literal_eval(_Infinities().visit(a)) for a in call.args]
        kwargs = {k.arg: ast.literal_eval(_Infinities().visit(k.value)) for k in call.keywords}
    except (SyntaxError, ValueError, TypeError) as exc:
        raise ValueError(
            f"ste must be a name in stefast.surrogates.registry() "
            f"({', '.join(map(repr, registry))}) or the repr of a stefast.surrogates object "
            f"(such as 'swish_sign(beta=2.0, scale=1.0)'); got {spec!r}") from exc
    return val.check_ste(getattr(surrogates, call.func.id)(*args, **kwargs))


# ---- binarize and sign ------------------------------------------------------

# The elementwise operations call stefast._core's flat kernels directly, as
# stefast.kernels does once its NumPy arguments are checked: here the tensors
# are checked already, and the NumPy API's own checks would double the cost of
# a call on a small tensor.

def _ste_grad_impl(x, grad, ste):
    _check_tensor(x, "x", "ste_grad")
    _check_tensor(grad, "grad", "ste_grad")
    _check_same_dtype("ste_grad", x=x, grad=grad)
    if x.shape != grad.shape:
        raise ValueError(f"stefast.torch.ste_grad: x and grad must have the same shape, got "
                         f"{tuple(x.shape)} and {tuple(grad.shape)}")
    out, out_np = _new_like(grad)
    _core.ste_grad(_as_numpy(x).reshape(-1), _as_numpy(grad).reshape(-1), out_np.reshape(-1),
                   c_argument(_surrogate_from_spec(ste)))
    return out


@torch.library.custom_op("stefast::ste_grad", mutates_args=())
def _ste_grad_op(x: torch.Tensor, grad: torch.Tensor, ste: str) -> torch.Tensor:
    """grad * mu'(x) (stefast.ste_grad): the backward of binarize and sign."""
    return _ste_grad_impl(x, grad, ste)


@_ste_grad_op.register_fake
def _(x, grad, ste):
    _check_tensor(x, "x", "ste_grad", _SHAPE_DEVICES)
    _check_tensor(grad, "grad", "ste_grad", _SHAPE_DEVICES)
    return torch.empty(grad.shape, dtype=grad.dtype, device=grad.device)


def _elementwise_op(name, kernel):
    """custom op ``stefast::name``: kernel forward, ste_grad backward."""

    def impl(x: torch.Tensor, ste: str) -> torch.Tensor:
        _check_tensor(x, "x", name)
        out, out_np = _new_like(x)
        kernel(_as_numpy(x).reshape(-1), out_np.reshape(-1))
        return out

    op = torch.library.custom_op(f"stefast::{name}", impl, mutates_args=())

    @op.register_fake
    def _(x, ste):
        _check_tensor(x, "x", name, _SHAPE_DEVICES)
        return torch.empty(x.shape, dtype=x.dtype, device=x.device)

    def setup_context(ctx, inputs, output):
        x, ste = inputs
        ctx.save_for_backward(x)
        ctx.ste = ste

    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return _ste_grad_op(x, grad, ctx.ste), None

    op.register_autograd(backward, setup_context=setup_context)
    return op


_binarize_op = _elementwise_op("binarize", _core.binarize)
_sign_op = _elementwise_op("sign", _core.sign)


def binarize(x, ste="relu"):
    """sigma(x) = 1[x > 0] with the straight-through backward ``grad * mu'(x)``.

    Parameters
    ----------
    x : torch.Tensor
        CPU, float32 or float64, any shape.
    ste : str or stefast.surrogates object
        The surrogate mu': a name in :func:`stefast.surrogates.registry`
        (``"identity"``, ``"relu"``, ``"clipped_relu"``, ``"hardtanh"``,
        ``"swish_sign"``, ...) or a registry object such as
        ``stefast.surrogates.swish_sign(2.0)``; not a Python callable.

    Returns
    -------
    torch.Tensor
        :func:`stefast.binarize` of x (1 where x > 0, else 0); its gradient is
        :func:`stefast.ste_grad` ``(x, grad, ste)``.

    Examples
    --------
    >>> import torch
    >>> from stefast import torch as st
    >>> x = torch.tensor([-0.5, 0.5, 1.5], requires_grad=True)
    >>> st.binarize(x, ste="clipped_relu").sum().backward()
    >>> x.grad
    tensor([0., 1., 0.])
    """
    _check_tensor(x, "x", "binarize")
    return _binarize_op(x, _surrogate_spec(ste, "binarize"))


def sign(x, ste="ste_sign"):
    """sign(x) with sign(0) = +1 and the straight-through backward ``grad * mu'(x)``.

    Parameters
    ----------
    x : torch.Tensor
        CPU, float32 or float64, any shape.
    ste : str or stefast.surrogates object
        As in :func:`binarize`; the default ``"ste_sign"`` is Larq's
        ``1[|x| <= 1]``. Surrogates of sign integrate to 2 (see
        :mod:`stefast.surrogates`).

    Returns
    -------
    torch.Tensor
        :func:`stefast.sign` of x (+1, -1, or NaN for NaN).

    Examples
    --------
    >>> import torch
    >>> from stefast import torch as st
    >>> st.sign(torch.tensor([-2.0, 0.0, 0.5]))
    tensor([-1.,  1.,  1.])
    """
    _check_tensor(x, "x", "sign")
    return _sign_op(x, _surrogate_spec(ste, "sign"))


# ---- quantized ReLU -------------------------------------------------------

def _alpha_value(alpha):
    return float(alpha.detach().reshape(()).item())


@torch.library.custom_op("stefast::quantized_relu", mutates_args=())
def _quantized_relu_op(x: torch.Tensor, bits: int, alpha: torch.Tensor, ste: str,
                       rounding: str, alpha_grad: str) -> torch.Tensor:
    """stefast.quantized_relu; ste and alpha_grad are the backward's."""
    _check_tensor(x, "x", "quantized_relu")
    out, out_np = _new_like(x)
    quantized.quantized_relu(_as_numpy(x), bits, _alpha_value(alpha), rounding, out=out_np)
    return out


@_quantized_relu_op.register_fake
def _(x, bits, alpha, ste, rounding, alpha_grad):
    _check_tensor(x, "x", "quantized_relu", _SHAPE_DEVICES)
    return torch.empty(x.shape, dtype=x.dtype, device=x.device)


@torch.library.custom_op("stefast::quantized_relu_grad", mutates_args=())
def _quantized_relu_grad_op(x: torch.Tensor, grad: torch.Tensor, bits: int, alpha: torch.Tensor,
                            ste: str, rounding: str,
                            alpha_grad: str) -> tuple[torch.Tensor, torch.Tensor]:
    """stefast.quantized_relu_grad: (grad_x, grad_alpha), grad_alpha shaped and typed as alpha."""
    _check_tensor(x, "x", "quantized_relu_grad")
    _check_tensor(grad, "grad", "quantized_relu_grad")
    grad_x, grad_x_np = _new_like(grad)
    got = quantized.quantized_relu_grad(_as_numpy(x), _as_numpy(grad), bits, _alpha_value(alpha),
                                        ste, out=grad_x_np, rounding=rounding,
                                        alpha_grad=alpha_grad)
    grad_alpha = torch.tensor(float(got.grad_alpha), dtype=alpha.dtype).reshape(alpha.shape)
    return grad_x, grad_alpha


@_quantized_relu_grad_op.register_fake
def _(x, grad, bits, alpha, ste, rounding, alpha_grad):
    return (torch.empty(grad.shape, dtype=grad.dtype, device=grad.device),
            torch.empty(alpha.shape, dtype=alpha.dtype, device=alpha.device))


def _quantized_relu_setup(ctx, inputs, output):
    x, bits, alpha, ste, rounding, alpha_grad = inputs
    ctx.save_for_backward(x, alpha)
    ctx.args = (bits, ste, rounding, alpha_grad)


def _quantized_relu_backward(ctx, grad):
    x, alpha = ctx.saved_tensors
    bits, ste, rounding, alpha_grad = ctx.args
    grad_x, grad_alpha = _quantized_relu_grad_op(x, grad, bits, alpha, ste, rounding, alpha_grad)
    return grad_x, None, grad_alpha, None, None, None


_quantized_relu_op.register_autograd(_quantized_relu_backward,
                                     setup_context=_quantized_relu_setup)


def quantized_relu(x, bits, alpha, ste="clipped_relu", *, rounding="ceil", alpha_grad="exact"):
    """b-bit quantized ReLU with a straight-through backward and a learnable alpha.

    The arguments are those of :func:`stefast.quantized_relu` and
    :func:`stefast.quantized_relu_grad`, in the latter's order.

    Parameters
    ----------
    x : torch.Tensor
        CPU, float32 or float64, any shape.
    bits : int
        Bit width in [1, 24]; ``L = 2**bits - 1`` levels above 0.
    alpha : torch.Tensor or float
        The resolution (level spacing), finite and > 0: a one-element CPU
        float tensor (an ``nn.Parameter`` to learn it; its gradient is
        :func:`stefast.quantized_relu_grad`'s ``grad_alpha``, computed in x's
        dtype and given alpha's dtype and shape) or a number (x's dtype).
    ste : {"identity", "relu", "clipped_relu"}
        The surrogate of x's gradient: 1, ``1[x > 0]`` or ``1[0 < x < L*alpha]``.
    rounding : {"ceil", "nearest"}
        ``"ceil"`` is the paper's form; see :func:`stefast.quantized_relu`.
    alpha_grad : {"exact", "lsq"}
        ``dq/dalpha`` for alpha's gradient; see :func:`stefast.quantized_relu_grad`.

    Returns
    -------
    torch.Tensor
        The quantized values, bitwise :func:`stefast.quantized_relu`'s.

    Examples
    --------
    >>> import torch
    >>> from stefast import torch as st
    >>> x = torch.tensor([-1.0, 0.2, 0.7, 2.0], requires_grad=True)
    >>> alpha = torch.nn.Parameter(torch.tensor(1.0))
    >>> st.quantized_relu(x, 1, alpha).sum().backward()
    >>> x.grad, alpha.grad
    (tensor([0., 1., 1., 0.]), tensor(3.))
    """
    _check_tensor(x, "x", "quantized_relu")
    if isinstance(alpha, torch.Tensor):
        _check_tensor(alpha, "alpha", "quantized_relu")
        if alpha.numel() != 1:
            raise ValueError(f"stefast.torch.quantized_relu: alpha must have one element, "
                             f"got a tensor of shape {tuple(alpha.shape)}")
    else:
        alpha = torch.tensor(_checked_alpha(alpha), dtype=x.dtype)
    return _quantized_relu_op(x, *_quantized_args(bits, alpha, ste, rounding, alpha_grad))


@_trace_constant
def _checked_alpha(alpha):
    return quantized.check_alpha(alpha)


@_trace_constant
def _checked_quantized_args(bits, ste, rounding, alpha_grad):
    return (quantized.check_bits(bits), quantized.check_quantized_ste(ste),
            quantized.check_rounding(rounding), quantized.check_alpha_grad(alpha_grad))


def _quantized_args(bits, alpha, ste, rounding, alpha_grad):
    bits, ste, rounding, alpha_grad = _checked_quantized_args(bits, ste, rounding, alpha_grad)
    return bits, alpha, ste, rounding, alpha_grad


# ---- the two-layer model's loss ------------------------------------------

@torch.library.custom_op("stefast::loss_and_grads", mutates_args=())
def _loss_and_grads_op(Z: torch.Tensor, v: torch.Tensor, w: torch.Tensor, v_star: torch.Tensor,
                       w_star: torch.Tensor, ste: str,
                       threads: Optional[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """stefast.loss_and_grads(reduce="mean"): (loss, grad_v, grad_w)."""
    got = kernels.loss_and_grads(_as_numpy(Z), _as_numpy(v), _as_numpy(w), _as_numpy(v_star),
                                 _as_numpy(w_star), ste=_surrogate_from_spec(ste), reduce="mean",
                                 threads=threads)
    # three separate small tensors (m + n + 1 numbers; the kernel's results are
    # views of one buffer, and a custom op's outputs must not alias each other)
    return tuple(torch.from_numpy(np.array(a, copy=True)) for a in got)


@_loss_and_grads_op.register_fake
def _(Z, v, w, v_star, w_star, ste, threads):
    m, n = Z.shape[-2:]
    return (Z.new_empty(()), Z.new_empty((m,)), Z.new_empty((n,)))


def _loss_setup(ctx, inputs, output):
    _, grad_v, grad_w = output
    ctx.save_for_backward(grad_v, grad_w)


def _loss_backward(ctx, grad_loss, _grad_grad_v, _grad_grad_w):
    # grad_v and grad_w are outputs for the backward's sake only: a gradient
    # sent into them is not defined and is ignored
    grad_v, grad_w = ctx.saved_tensors
    return None, grad_loss * grad_v, grad_loss * grad_w, None, None, None, None


_loss_and_grads_op.register_autograd(_loss_backward, setup_context=_loss_setup)


def loss(Z, v, w, v_star, w_star, ste="relu", *, threads=None):
    """The two-layer model's batch-mean loss; its backward is the coarse gradient.

    ``loss = mean_b (v' sigma(Z_b w) - v*' sigma(Z_b w*))^2 / 2``; backward
    gives v the exact gradient and w the straight-through coarse gradient
    g_mu, bitwise those of :func:`stefast.loss_and_grads` (``reduce="mean"``),
    computed by the same kernel call as the loss. Z, v_star and w_star get no
    gradient. Algorithm 1 is then ``torch.optim.SGD([v, w], lr)`` over it
    (see the module's example).

    Parameters
    ----------
    Z : torch.Tensor, shape (B, m, n) or (m, n)
        A batch of inputs (or one), CPU, float32 or float64.
    v, w : torch.Tensor, shapes (m,), (n,)
        The student's weights (parameters), Z's dtype.
    v_star, w_star : torch.Tensor, shapes (m,), (n,)
        The teacher's weights, Z's dtype.
    ste : str or stefast.surrogates object
        The surrogate mu', as in :func:`binarize`.
    threads : int, optional
        Threads over the batch (None: every core), as in
        :func:`stefast.loss_and_grads`; the result is bitwise the same for any
        value.

    Returns
    -------
    torch.Tensor
        The loss, a 0-d tensor of Z's dtype.
    """
    tensors = dict(Z=Z, v=v, w=w, v_star=v_star, w_star=w_star)
    for name, t in tensors.items():
        _check_tensor(t, name, "loss")
    _check_same_dtype("loss", **tensors)
    if Z.dim() not in (2, 3):
        raise ValueError(f"stefast.torch.loss: Z must have shape (B, m, n) or (m, n), "
                         f"got shape {tuple(Z.shape)}")
    m, n = Z.shape[-2:]
    for name, t, size in (("v", v, m), ("w", w, n), ("v_star", v_star, m), ("w_star", w_star, n)):
        if tuple(t.shape) != (size,):
            raise ValueError(f"stefast.torch.loss: {name} must have shape ({size},) to match "
                             f"Z of shape {tuple(Z.shape)}, got shape {tuple(t.shape)}")
    if Z.dim() == 3 and Z.shape[0] == 0:
        raise ValueError("stefast.torch.loss: Z has an empty batch (B = 0): the mean is "
                         "undefined")
    return _loss_and_grads_op(Z, v, w, v_star, w_star, _surrogate_spec(ste, "loss"),
                              _checked_threads(threads))[0]


@_trace_constant
def _checked_threads(threads):
    return None if threads is None else val.check_threads(threads)
