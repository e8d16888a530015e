"""Peer implementations shared by the benchmark files: Numba kernels and
PyTorch functions doing the same work as stefast, built lazily and cached.

Each builder returns None (or raises pytest.skip) when its package is
missing or compilation fails, so a missing peer is a skip, never an error.
Accumulation is in float64 for every peer, as in stefast.
"""

import warnings

import numpy as np
import pytest

_CACHE = {}


def torch_binarize_ste():
    """torch.autograd.Function: sigma(x) = 1[x > 0] forward, relu surrogate
    1[x > 0] backward -- the STE a PyTorch user would write."""
    torch = torch_or_skip()

    class BinarizeSTE(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad * (x > 0).to(grad.dtype)

    return BinarizeSTE


def numba_or_skip():
    return pytest.importorskip("numba")


def torch_or_skip():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch


# ---- elementwise ----

def numba_elementwise():
    """{"binarize": f(x, out), "sign": f(x, out), "ste_grad": f(x, g, out)}
    (relu window), single-threaded @njit."""
    if "nb_elem" in _CACHE:
        return _CACHE["nb_elem"]
    numba = numba_or_skip()

    @numba.njit(cache=False, nogil=True)
    def binarize(x, out):
        for i in range(x.size):
            out[i] = 1.0 if x[i] > 0 else 0.0
        return out

    @numba.njit(cache=False, nogil=True)
    def sign(x, out):
        for i in range(x.size):
            xi = x[i]
            out[i] = xi if xi != xi else (1.0 if xi >= 0 else -1.0)
        return out

    @numba.njit(cache=False, nogil=True)
    def ste_grad(x, g, out):
        for i in range(x.size):
            out[i] = g[i] if x[i] > 0 else 0.0
        return out

    _CACHE["nb_elem"] = dict(binarize=binarize, sign=sign, ste_grad=ste_grad)
    return _CACHE["nb_elem"]


def torch_elementwise():
    torch = torch_or_skip()

    def binarize(x):
        xt = torch.from_numpy(x)
        return (xt > 0).to(xt.dtype).numpy()

    def sign(x):
        xt = torch.from_numpy(x)
        s = torch.where(xt >= 0, 1.0, -1.0).to(xt.dtype)
        return torch.where(torch.isnan(xt), xt, s).numpy()

    def ste_grad(x, g):
        xt, gt = torch.from_numpy(x), torch.from_numpy(g)
        return torch.where(xt > 0, gt, torch.zeros((), dtype=gt.dtype)).numpy()

    return dict(binarize=binarize, sign=sign, ste_grad=ste_grad)


# ---- loss_and_grads (relu STE, reduce="sum") ----

def numba_loss_and_grads(parallel):
    """f(Z, v, w, v_star, w_star) -> (loss, grad_v, grad_w), relu STE, sums.
    parallel=True splits the batch into one chunk per Numba thread
    (prange), each with its own float64 accumulators, then adds them."""
    key = ("nb_lag", parallel)
    if key in _CACHE:
        return _CACHE[key]
    numba = numba_or_skip()

    @numba.njit(nogil=True, fastmath=False)
    def chunk(Z, v, w, vs, ws, lo, hi, gv, gw):
        m, n = Z.shape[1], Z.shape[2]
        zw = np.empty(m)
        loss = 0.0
        for b in range(lo, hi):
            r = 0.0
            for i in range(m):
                s = 0.0
                t = 0.0
                for j in range(n):
                    s += Z[b, i, j] * w[j]
                    t += Z[b, i, j] * ws[j]
                zw[i] = s
                if s > 0:
                    r += v[i]
                if t > 0:
                    r -= vs[i]
            loss += 0.5 * r * r
            for i in range(m):
                if zw[i] > 0:
                    gv[i] += r
                    a = v[i] * r
                    for j in range(n):
                        gw[j] += a * Z[b, i, j]
        return loss

    if parallel:
        @numba.njit(parallel=True, nogil=True)
        def run(Z, v, w, vs, ws):
            B, m, n = Z.shape
            T = numba.get_num_threads()
            gv = np.zeros((T, m))
            gw = np.zeros((T, n))
            losses = np.zeros(T)
            for c in numba.prange(T):
                lo = B * c // T
                hi = B * (c + 1) // T
                losses[c] = chunk(Z, v, w, vs, ws, lo, hi, gv[c], gw[c])
            return losses.sum(), gv.sum(axis=0), gw.sum(axis=0)
    else:
        @numba.njit(nogil=True)
        def run(Z, v, w, vs, ws):
            B, m, n = Z.shape
            gv = np.zeros(m)
            gw = np.zeros(n)
            loss = chunk(Z, v, w, vs, ws, 0, B, gv, gw)
            return loss, gv, gw

    _CACHE[key] = run
    return run


def torch_compiled_loss_and_grads():
    """torch.compile of the explicit STE formulas (no autograd inside the
    graph), or pytest.skip if inductor is unavailable or fails. Compiling
    takes tens of seconds (about 90 s on a busy 2-core machine)."""
    if "tc_lag" in _CACHE:
        if _CACHE["tc_lag"] is None:
            pytest.skip("torch.compile failed earlier in this run")
        return _CACHE["tc_lag"]
    torch = torch_or_skip()
    if not hasattr(torch, "compile"):
        pytest.skip("torch.compile not available")

    def f(Z, v, w, vs, ws):
        zw = Z @ w
        s = (zw > 0).to(Z.dtype)
        r = (s * v).sum(-1) - ((Z @ ws > 0).to(Z.dtype) * vs).sum(-1)
        loss = 0.5 * (r * r).sum()
        gv = (s * r[:, None]).sum(0)
        gw = torch.einsum("bm,bmn->n", s * v * r[:, None], Z)
        return loss, gv, gw

    compiled = torch.compile(f, dynamic=False)

    def run(Z, v, w, vs, ws):
        t = [torch.from_numpy(a) for a in (Z, v, w, vs, ws)]
        loss, gv, gw = compiled(*t)
        return loss.item(), gv.numpy(), gw.numpy()

    _CACHE["tc_lag"] = run
    return run


def torch_compile_failed(exc):
    _CACHE["tc_lag"] = None
    pytest.skip(f"torch.compile failed: {type(exc).__name__}: {str(exc)[:200]}")


def check_loss_and_grads(peer_result, fast, dtype, ste_masks_ok=True):
    """A wrong fast peer is not a peer: compare once against stefast."""
    loss, gv, gw = peer_result
    tol = 1e-3 if np.dtype(dtype) == np.float32 else 1e-8
    np.testing.assert_allclose(float(loss), float(fast.loss), rtol=tol)
    np.testing.assert_allclose(np.asarray(gv, float), fast.grad_v, rtol=tol,
                               atol=tol * max(np.abs(fast.grad_v).max(), 1))
    np.testing.assert_allclose(np.asarray(gw, float), fast.grad_w, rtol=tol,
                               atol=tol * max(np.abs(fast.grad_w).max(), 1))


# ---- coarse gradient descent ensembles ----

def jax_or_skip():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    return jax


def jax_ensemble(steps, lr):
    """jit(vmap(lax.scan)) of full-batch coarse gradient descent (relu STE,
    teacher labels): runs over the leading axis, steps in a scan."""
    key = ("jax_ens", steps, lr)
    if key in _CACHE:
        return _CACHE[key]
    jax = jax_or_skip()
    jnp = jax.numpy

    def one_run(v0, w0, v_star, w_star, Z):
        y_star = jnp.where(Z @ w_star > 0, v_star, 0.0).sum(-1)  # (N,)

        def step(state, _):
            v, w = state
            zw = Z @ w  # (N, m)
            s = zw > 0
            r = jnp.where(s, v, 0.0).sum(-1) - y_star
            gv = jnp.where(s, r[:, None], 0.0).mean(0)
            a = jnp.where(s, v * r[:, None], 0.0)  # relu window
            gw = jnp.einsum("bmn,bm->n", Z, a) / Z.shape[0]
            return (v - lr * gv, w - lr * gw), None

        (v, w), _ = jax.lax.scan(step, (v0, w0), None, length=steps)
        return v, w

    fn = jax.jit(jax.vmap(one_run, in_axes=(0, 0, None, None, 0)))
    _CACHE[key] = fn
    return fn
