"""The PyTorch bridge (stefast.torch) against plain PyTorch autograd doing the
same straight-through operations, forward and backward, one thread each.

Per group the row "stefast" is the stefast.torch operation; the peers are
what a PyTorch user writes without stefast:

* "torch-autograd": a ``torch.autograd.Function`` in pure torch (forward
  formula, straight-through backward formula);
* "torch-detach": the detach idiom, ``surrogate(x) + (forward(x) -
  surrogate(x)).detach()``, whose backward is autograd's own.

Groups: binarize (relu surrogate) and the 2-bit quantized ReLU (clipped_relu
surrogate, learnable alpha with the exact alpha-gradient) on 16 K and 2 M
elements, float32 and float64; the two-layer model's loss with its coarse
gradient (32x64, 2048 samples); and the binarize and quantized ReLU groups
again interleaved round by round. Every peer is checked once against
stefast.torch before it is timed. Skipped without torch.

    pytest bench/test_bench_torch.py                       # timed
    pytest bench/test_bench_torch.py --benchmark-disable   # smoke
"""

import numpy as np
import pytest

import _peers
from conftest import elementwise_params, rounds

SIZES = [1 << 14, 1 << 21]
DTYPES = [np.float32, np.float64]
IMPLS = ["stefast", "torch-autograd", "torch-detach"]
BITS = 2
_INPUTS = {}


def _torch():
    """torch (one thread) and stefast.torch, or a skip."""
    torch = _peers.torch_or_skip()
    return torch, pytest.importorskip("stefast.torch")


def inputs(size, dtype):
    """Cached, seeded x and upstream gradient g (finite: the detach idiom
    turns NaN into NaN where stefast's binarize gives 0)."""
    key = (size, np.dtype(dtype).name)
    if key not in _INPUTS:
        rng = np.random.default_rng(size)
        x = rng.standard_normal(size).astype(dtype)
        g = rng.standard_normal(size).astype(dtype)
        _INPUTS.clear()
        _INPUTS[key] = (x, g)
    return _INPUTS[key]


def _forward_backward(torch, op, x, g, params=()):
    """Callable: a fresh leaf on x's memory, op forward, backward with g;
    returns (y, grad_x, *grads of params)."""
    xs, gt = torch.from_numpy(x), torch.from_numpy(g)

    def run():
        xt = xs.detach().requires_grad_()
        for p in params:
            p.grad = None
        y = op(xt)
        y.backward(gt)
        return (y, xt.grad, *(p.grad for p in params))

    return run


# ---- binarize --------------------------------------------------------------

def binarize_peer(torch, impl):
    if impl == "torch-autograd":
        return _peers.torch_binarize_ste().apply
    assert impl == "torch-detach"
    relu = torch.nn.functional.relu  # surrogate: relu, whose derivative is 1[x > 0]
    return lambda x: relu(x) + ((x > 0).to(x.dtype) - relu(x)).detach()


def make_binarize(impl, x, g):
    torch, st = _torch()
    op = (lambda t: st.binarize(t, ste="relu")) if impl == "stefast" else binarize_peer(torch, impl)
    return _forward_backward(torch, op, x, g)


# ---- quantized ReLU --------------------------------------------------------

def quantized_relu_peer(torch, impl, bits):
    levels = 2 ** bits - 1

    def quantize(x, alpha):  # alpha * clip(ceil(x / alpha), 0, L): the paper's form
        return torch.clamp(torch.ceil(x / alpha), 0, levels)

    if impl == "torch-autograd":
        class QuantizedReLU(torch.autograd.Function):
            @staticmethod
            def forward(ctx, x, alpha):
                k = quantize(x, alpha)
                ctx.save_for_backward(x, alpha, k)
                return alpha * k

            @staticmethod
            def backward(ctx, grad):
                x, alpha, k = ctx.saved_tensors
                window = (x > 0) & (x < levels * alpha)
                grad_alpha = (grad.double() * k).sum().to(alpha.dtype)  # double, as stefast
                return grad * window.to(grad.dtype), grad_alpha

        return QuantizedReLU.apply
    assert impl == "torch-detach"

    def detached(x, alpha):
        # value alpha * k; x's gradient through clamp (1 on the window),
        # alpha's through alpha * k (dq/dalpha = k, the exact alpha-gradient)
        k = quantize(x, alpha).detach()
        window = torch.clamp(x, 0, (levels * alpha).detach())
        return alpha * k + (window - window.detach())

    return detached


def make_quantized_relu(impl, x, g):
    torch, st = _torch()
    alpha = torch.nn.Parameter(torch.tensor(0.6, dtype=torch.from_numpy(x).dtype))
    if impl == "stefast":
        op = (lambda t: st.quantized_relu(t, BITS, alpha, "clipped_relu"))
    else:
        peer = quantized_relu_peer(torch, impl, BITS)
        op = (lambda t: peer(t, alpha))
    return _forward_backward(torch, op, x, g, params=(alpha,))


# ---- groups ------------------------------------------------------------------

MAKERS = {"binarize": make_binarize, "quantized_relu": make_quantized_relu}


def check_peer(fn, fast, dtype):
    """A wrong fast peer is not a peer: its outputs against stefast.torch's."""
    tol = 1e-6 if dtype == np.float32 else 1e-12
    for got, want in zip(fn(), fast()):
        np.testing.assert_allclose(got.detach().numpy(), want.detach().numpy(), rtol=tol,
                                   atol=tol * max(1.0, float(want.abs().max())))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op,size,dtype",
                         list(elementwise_params(MAKERS, SIZES, DTYPES, np.float32)))
def test_torch_bridge(benchmark, report, op, size, dtype, impl):
    x, g = inputs(size, dtype)
    fn = MAKERS[op](impl, x, g)
    if impl != "stefast":
        check_peer(fn, MAKERS[op]("stefast", x, g), dtype)
    name = np.dtype(dtype).name
    benchmark.group = f"torch bridge: {op} fwd+bwd {size} {name}"
    benchmark.pedantic(fn, rounds=rounds(15), iterations=1, warmup_rounds=2)
    report(impl, work=size, unit="elements", op=op, size=size, dtype=name)


@pytest.mark.quick
@pytest.mark.parametrize("op", list(MAKERS))
def test_torch_bridge_interleaved(benchmark, interleave, op):
    """The 2 M float32 groups timed round by round (stefast.torch and both
    peers in turn), medians and quartiles in extra_info["interleaved"]."""
    size, dtype = SIZES[-1], np.float32
    x, g = inputs(size, dtype)
    fns = {impl: MAKERS[op](impl, x, g) for impl in IMPLS}
    benchmark.group = f"interleaved: torch bridge {op} fwd+bwd {size} float32"
    interleave(fns, work=size, rounds=9, unit="elements", op=op, size=size, dtype="float32")


# ---- the two-layer model's loss --------------------------------------------

LOSS_SHAPE, LOSS_BATCH = (32, 64), 2048


def make_loss(impl, Z, v, w, v_star, w_star):
    """Callable: loss forward and backward from fresh leaves v, w; returns
    (loss, grad_v, grad_w) as tensors."""
    torch, st = _torch()
    Zt, vs, ws = torch.from_numpy(Z), torch.from_numpy(v_star), torch.from_numpy(w_star)
    v0, w0 = torch.from_numpy(v), torch.from_numpy(w)
    if impl == "stefast":
        def loss_fn(vt, wt):
            return st.loss(Zt, vt, wt, vs, ws, ste="relu", threads=1)
    else:
        assert impl == "torch-autograd"
        binarize = _peers.torch_binarize_ste().apply
        with torch.no_grad():
            y_star = (Zt @ ws > 0).to(Zt.dtype) @ vs

        def loss_fn(vt, wt):
            r = binarize(Zt @ wt) @ vt - y_star
            return 0.5 * (r * r).mean()

    def run():
        vt, wt = v0.detach().requires_grad_(), w0.detach().requires_grad_()
        loss = loss_fn(vt, wt)
        loss.backward()
        return loss, vt.grad, wt.grad

    return run


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("impl", ["stefast", "torch-autograd"])
def test_torch_bridge_loss(benchmark, report, impl, dtype):
    m, n = LOSS_SHAPE
    rng = np.random.default_rng(0)
    Z = rng.standard_normal((LOSS_BATCH, m, n)).astype(dtype)
    v, w, v_star, w_star = (rng.standard_normal(k).astype(dtype) for k in (m, n, m, n))
    fn = make_loss(impl, Z, v, w, v_star, w_star)
    if impl != "stefast":
        # sums in a different order: float32 agrees to its precision, not bitwise
        tol = 1e-3 if dtype == np.float32 else 1e-9
        for got, want in zip(fn(), make_loss("stefast", Z, v, w, v_star, w_star)()):
            want = want.detach().numpy()
            np.testing.assert_allclose(got.detach().numpy(), want, rtol=tol,
                                       atol=tol * max(1.0, float(np.abs(want).max())))
    name = np.dtype(dtype).name
    benchmark.group = f"torch bridge: loss fwd+bwd {m}x{n} B={LOSS_BATCH} {name} 1 thread"
    benchmark.pedantic(fn, rounds=rounds(9), iterations=1, warmup_rounds=1)
    report(impl, work=LOSS_BATCH, unit="samples", m=m, n=n, dtype=name)
