"""Slow, readable NumPy twins of every fast stefast function.

Each function here has the same signature and the same conventions as its
fast twin (exported from the top-level ``stefast`` package) and is written to
read like the formulas of docs/math.rst, not to be fast. Tests compare the two; benchmarks
report "reference time / fast time".

Validation is shared with the fast path (``stefast._validation``), so both
raise the same errors on the same bad input.
"""

import numpy as np

from stefast import _validation as val
from stefast._geometry import window_mask
from stefast.kernels import LossAndGrads

__all__ = [
    "binarize",
    "sign",
    "ste_grad",
    "forward",
    "loss_and_grads",
    "quantized_relu",
    "quantized_relu_grad",
    "monte_carlo",
]


def binarize(x, out=None):
    x = val.as_float_array(x, "x")
    result = (x > 0).astype(x.dtype)
    return val.deliver(result, out, "out")


def sign(x, out=None):
    x = val.as_float_array(x, "x")
    result = np.where(x >= 0, 1, -1).astype(x.dtype)
    result[np.isnan(x)] = np.nan
    return val.deliver(result, out, "out")


def ste_grad(x, grad, ste="relu", out=None):
    x, grad = val.as_float_arrays(("x", x), ("grad", grad))
    val.check_same_shape(x, "x", grad, "grad")
    ste = val.check_ste(ste)
    # outside the window the gradient is blocked: exactly 0, even for inf/NaN grad
    result = np.where(window_mask(x, ste), grad, 0).astype(grad.dtype)
    return val.deliver(result, out, "out")


def forward(Z, v, w):
    Z, v, w = val.check_model_inputs(Z, v, w)
    active = Z @ w > 0  # sigma(Zw), (..., m)
    y = np.where(active, v, 0).sum(axis=-1)  # an inactive unit adds exactly 0
    return y[()] if Z.ndim == 2 else y


def loss_and_grads(Z, v, w, v_star, w_star, *, ste="relu", reduce="mean", threads=None):
    Z, v, w, v_star, w_star = val.check_model_inputs(Z, v, w, v_star, w_star)
    ste = val.check_ste(ste)
    reduce = val.check_reduce(reduce)
    val.check_threads(threads)
    single = Z.ndim == 2
    Zb = Z[None] if single else Z  # (B, m, n)

    Zw = Zb @ w  # (B, m)
    Zw_star = Zb @ w_star
    sigma = Zw > 0
    sigma_star = Zw_star > 0
    # residual v^T sigma(Zw) - v*^T sigma(Zw*); inactive units add exactly 0
    r = np.where(sigma, v, 0).sum(axis=-1) - np.where(sigma_star, v_star, 0).sum(axis=-1)

    loss = 0.5 * r * r
    grad_v = np.where(sigma, r[:, None], 0)  # exact dl/dv
    window = window_mask(Zw, ste)
    a = np.where(window, v * r[:, None], 0)  # (mu'(Zw) . v) r
    # coarse gradient Z^T a; rows outside the window add exactly nothing,
    # even when they hold inf or NaN
    grad_w = np.einsum("bmn,bm->bn", np.where(window[..., None], Zb, 0), a)

    if reduce == "none":
        if single:
            return LossAndGrads(loss[0], grad_v[0], grad_w[0])
        return LossAndGrads(loss, grad_v, grad_w)
    # batch reductions accumulate in float64, then return in the input dtype
    total = [np.sum(q.astype(np.float64), axis=0) for q in (loss, grad_v, grad_w)]
    if reduce == "mean":
        total = [t / Zb.shape[0] for t in total]
    loss_t, gv, gw = (np.asarray(t, dtype=Z.dtype) for t in total)
    return LossAndGrads(loss_t[()], gv, gw)


# ---- quantized ReLU ----
# Twins of stefast.quantized; the same argument checks, the same arithmetic in
# the input's precision (u = x / alpha in float32 for float32 input).

def _quantized_level(x, bits, alpha, rounding):
    """(k, u): the integer level k(x/alpha) in {0..L} (NaN for NaN x) and u = x/alpha."""
    t = x.dtype.type
    a, L = t(alpha), t(2 ** bits - 1)
    with np.errstate(over="ignore", invalid="ignore"):
        u = x / a
        if rounding == "ceil":
            k = np.ceil(u)
        else:  # nearest, ties up; u - floor(u) is exact
            f = np.floor(u)
            k = f + ((u - f) >= t(0.5)).astype(x.dtype)
    k = np.where(k <= 0, t(0), k)  # comparisons, not np.clip: NaN stays NaN, -0 -> +0
    k = np.where(k > L, L, k).astype(x.dtype)
    return k, u


def quantized_relu(x, bits, alpha, rounding="ceil", out=None):
    from stefast import quantized as qz

    x = val.as_float_array(x, "x")
    bits = qz.check_bits(bits)
    alpha = qz.check_alpha(alpha, x.dtype)
    rounding = qz.check_rounding(rounding)
    k, _ = _quantized_level(x, bits, alpha, rounding)
    result = (k * x.dtype.type(alpha)).astype(x.dtype)
    return val.deliver(result, out, "out")


def quantized_relu_grad(x, grad, bits, alpha, ste="clipped_relu", out=None, *,
                        rounding="ceil", alpha_grad="exact"):
    from stefast import quantized as qz

    x, grad = val.as_float_arrays(("x", x), ("grad", grad))
    val.check_same_shape(x, "x", grad, "grad")
    bits = qz.check_bits(bits)
    alpha = qz.check_alpha(alpha, x.dtype)
    ste = qz.check_quantized_ste(ste)
    rounding = qz.check_rounding(rounding)
    alpha_grad = qz.check_alpha_grad(alpha_grad)
    t = x.dtype.type
    top = t(2 ** bits - 1) * t(alpha)
    inside = (x > 0) & (x < top)  # the clipped_relu window 0 < x < L alpha
    window = {"identity": np.ones(x.shape, dtype=bool), "relu": x > 0,
              "clipped_relu": inside}[ste]
    grad_x = np.where(window, grad, t(0)).astype(x.dtype)

    k, u = _quantized_level(x, bits, alpha, rounding)
    dq_dalpha = np.where(inside, k - u, k) if alpha_grad == "lsq" else k
    with np.errstate(invalid="ignore", over="ignore"):  # inf and NaN as in C, silently
        terms = grad.astype(np.float64) * dq_dalpha.astype(np.float64)
        grad_alpha = np.sum(np.where(dq_dalpha != 0, terms, 0.0))  # exact zeros stay 0
    return qz.QuantizedReluGrad(val.deliver(grad_x, out, "out"), t(grad_alpha))


# ---- Monte Carlo ----
# Twin of stefast.monte_carlo: NumPy's standard_normal and the reference
# loss_and_grads, batch by batch. Same signature, same validation, same
# MCEstimate; the numbers differ from the fast path (another generator:
# NumPy's Generator here, stefast's per-sample streams there), the
# distributions do not. ``threads`` and ``start`` are validated and ignored
# (NumPy's generator has no per-sample streams), ``progress`` is ignored; the
# estimate carries no stream segments, so ``merge`` cannot detect overlap.

def _mc_batch_values(gen, v, w, v_star, w_star, ste, method, Q, alpha, beta, B, dtype):
    """Per-sample (loss, grad_v, grad_w) of B samples, as one (B, 1+m+n) array."""
    m, n = v.size, w.size
    if method == "full":
        Z = gen.standard_normal((B, m, n), dtype=dtype)
        out = loss_and_grads(Z, v.astype(dtype), w.astype(dtype), v_star.astype(dtype),
                             w_star.astype(dtype), ste=ste, reduce="none")
        return np.column_stack([out.loss, out.grad_v, out.grad_w]).astype(np.float64)
    # MATH.md section 8: S = Z Q^T (B, m, k); Zw = S alpha, Zw* = S beta
    k = Q.shape[0]
    S = gen.standard_normal((B, m, k), dtype=dtype)
    zw, zws = S @ alpha.astype(dtype), S @ beta.astype(dtype)
    r = (zw > 0).astype(dtype) @ v.astype(dtype) - (zws > 0).astype(dtype) @ v_star.astype(dtype)
    a = np.where(window_mask(zw, ste), v.astype(dtype) * r[:, None], 0)
    c = np.einsum("bmk,bm->bk", S, a)  # E[g | S] = Q^T c
    if method == "projected":
        xi = gen.standard_normal((B, n), dtype=dtype)
        na = np.linalg.norm(a, axis=1)
        g = (c - na[:, None] * (xi @ Q.T.astype(dtype))) @ Q.astype(dtype) + na[:, None] * xi
    else:
        g = c @ Q.astype(dtype)
    grad_v = (zw > 0) * r[:, None]
    return np.column_stack([0.5 * r * r, grad_v, g]).astype(np.float64)


def monte_carlo(v, w, v_star, w_star, *, ste="relu", n_samples, method="full", rng=None,
                threads=None, dtype=np.float64, progress=False, start=0):
    from stefast import montecarlo as mc

    v, w, v_star, w_star = val.check_weights(v, w, v_star, w_star)
    ste = val.check_ste(ste)
    method = val.check_choice(method, "method", mc.METHODS)
    n_samples, start = mc.check_sample_range(n_samples, start)
    dtype = val.check_float_dtype(dtype)
    val.check_threads(threads)
    gen = val.check_rng(rng)
    Q, alpha, beta = mc.mc_basis(w, w_star)
    m, n = v.size, w.size
    t, exps = mc.v_scale(v, v_star, n)  # exact: see v_scale
    v, v_star = v * t, v_star * t
    batch = max(1, (1 << 22) // (m * n))
    count, mean, m2 = 0, np.zeros(1 + m + n), np.zeros(1 + m + n)
    done = 0
    while done < n_samples:
        B = min(batch, n_samples - done)
        X = _mc_batch_values(gen, v, w, v_star, w_star, ste, method, Q, alpha, beta, B, dtype)
        mb, m2b = X.mean(axis=0), ((X - X.mean(axis=0)) ** 2).sum(axis=0)
        if count == 0:
            mean, m2 = mb, m2b
        else:  # Chan et al.'s pooled update
            delta = mb - mean
            mean = mean + delta * (B / (count + B))
            m2 = m2 + m2b + delta * delta * (count * B / (count + B))
        count += B
        done += B
    return mc.MCEstimate._from_moments(mean, m2, count, method, ste, dtype, m, (), exps)
