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
    "descent_ensemble",
]


def _surrogate(x, ste):
    """(where mu'(x) != 0, mu'(x) in x's dtype) for a checked ste; None in
    place of mu' for a named window, whose mu' is 1 on it."""
    if isinstance(ste, str):
        return window_mask(x, ste), None
    mu = ste.derivative(x)
    return mu != 0, mu


def _times_mu(a, mu):
    return a if mu is None else a * mu


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
    # outside the support the gradient is blocked: exactly 0, even for inf/NaN grad
    inside, mu = _surrogate(x, ste)
    with np.errstate(invalid="ignore", over="ignore"):
        result = np.where(inside, _times_mu(grad, mu), 0).astype(grad.dtype)
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
    window, mu = _surrogate(Zw, ste)
    a = np.where(window, _times_mu(v, mu) * r[:, None], 0)  # (mu'(Zw) . v) r
    # coarse gradient Z^T a; rows outside the support add exactly nothing,
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
    # docs/math.rst, section "Monte Carlo samplers": S = Z Q^T (B, m, k); Zw = S alpha, Zw* = S beta
    k = Q.shape[0]
    S = gen.standard_normal((B, m, k), dtype=dtype)
    zw, zws = S @ alpha.astype(dtype), S @ beta.astype(dtype)
    r = (zw > 0).astype(dtype) @ v.astype(dtype) - (zws > 0).astype(dtype) @ v_star.astype(dtype)
    inside, mu = _surrogate(zw, ste)
    a = np.where(inside, _times_mu(v.astype(dtype), mu) * r[:, None], 0)
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


# ---- coarse gradient descent ensembles ----
# The twin of stefast.descent_ensemble, one run at a time in NumPy: the same
# data (the same generator streams and shuffles), the same arithmetic order
# of the updates, but batch sums in NumPy's order, so the two agree to
# rounding, not to the bit.

_SHUFFLE_DOMAIN = 0x73687566666C65  # the epoch shuffles' Threefry key domain (descent.c)


def _epoch_permutation(key, run, epoch, N):
    """The Fisher-Yates shuffle of descent.c, one Threefry word per swap."""
    from stefast import _core

    perm = list(range(N))
    for i in range(N - 1, 0, -1):
        word, _ = _core.threefry2x64_20(run, (epoch * N + i) % 2**64,
                                        int(key[0]) ^ _SHUFFLE_DOMAIN, int(key[1]))
        j = (word * (i + 1)) >> 64
        perm[i], perm[j] = perm[j], perm[i]
    return np.array(perm)


def _reference_run(v, w, v_star, w_star, Z, y, N, stream, ste, lr, steps, batch_size,
                   label_noise, tol, key, dtype, record_every):
    from stefast import montecarlo as mc

    m, n = v.size, w.size
    t_ = dtype.type
    online = Z is None and N == 0
    normals = None
    if Z is None or label_noise > 0:
        # the prefix of the run's stream that it will use, drawn at once
        if online:
            need = (steps + 1) * (batch_size * m * n + (batch_size if label_noise > 0 else 0))
        else:
            need = (0 if Z is not None else N * m * n) + (N if label_noise > 0 else 0)
        normals = np.empty(need, dtype=dtype)
        mc._core.normals(key, stream, normals, 1, need, 1)
    pos = 0
    if not online and Z is None:
        Z = normals[:N * m * n].reshape(N, m, n)
        pos = N * m * n
    labelled = y is not None or label_noise > 0
    if labelled and not online and y is None:
        y = forward(Z, v_star, w_star).astype(dtype)
        y = y + (label_noise * normals[pos:pos + N].astype(np.float64)).astype(dtype)
    B = batch_size if online or (batch_size and batch_size < N) else N
    per_epoch = 1 if online or B == N else -(-N // B)
    records = []  # (loss, v, w) at the recorded steps
    t = 0
    while True:
        if online:
            Zb = normals[pos:pos + B * m * n].reshape(B, m, n)
            pos += B * m * n
            yb = None
            if labelled:
                yb = forward(Zb, v_star, w_star).astype(dtype)
                yb = yb + (label_noise * normals[pos:pos + B].astype(np.float64)).astype(dtype)
                pos += B
        elif B == N:
            Zb, yb = Z, y
        else:
            e, j = divmod(t, per_epoch)
            if j == 0:
                perm = _epoch_permutation(key, stream, e, N)
            idx = perm[j * B:(j + 1) * B]
            Zb, yb = Z[idx], (None if y is None else y[idx])
        if yb is None:
            yb = forward(Zb, v_star, w_star)
        # the loss and gradients of the model with these labels
        zw = Zb @ w
        r = np.where(zw > 0, v, t_(0)).sum(-1) - yb
        loss = 0.5 * r.astype(np.float64) ** 2
        gv = np.where(zw > 0, r[:, None], t_(0)).astype(np.float64)
        inside, mu = _surrogate(zw, ste)
        a = np.where(inside, _times_mu(v, mu) * r[:, None], t_(0))
        gw = np.einsum("bmn,bm->bn", Zb, a).astype(np.float64)
        Bt = Zb.shape[0]
        mean_v, mean_w, mean_loss = gv.sum(0) / Bt, gw.sum(0) / Bt, float(loss.sum() / Bt)
        if record_every and t % record_every == 0:
            records.append((mean_loss, v, w))
        if t >= steps or (tol > 0 and np.sqrt(mean_v @ mean_v + mean_w @ mean_w) < tol):
            return v, w, t, mean_loss, records
        v = (v.astype(np.float64) - lr * mean_v).astype(dtype)
        w = (w.astype(np.float64) - lr * mean_w).astype(dtype)
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            return v, w, t + 1, float("nan"), records
        t += 1


def descent_ensemble(v0, w0, v_star, w_star, *, ste="relu", lr, steps, Z=None, y=None,
                     n_train=None, batch_size=None, label_noise=0.0, rng=None,
                     record_every=None, tol=None, success_tol=1e-3, first_stream=0,
                     threads=None, progress=False):
    from stefast import descent as ds
    from stefast import montecarlo as mc

    ste = val.check_ste(ste)
    v0, w0, v_star, w_star, Z, y, stride, (R, N, m, n) = val.check_ensemble_inputs(
        v0, w0, v_star, w_star, Z, y)
    if n_train is not None:
        N = val.check_positive_int(n_train, "n_train")
    steps = val.check_positive_int(steps, "steps", minimum=0)
    record_every = 0 if record_every is None else val.check_positive_int(record_every,
                                                                          "record_every")
    key = mc.mc_key(rng)
    n_rec = steps // record_every + 1 if record_every else 0
    dt = v0.dtype
    v, w = np.empty_like(v0), np.empty_like(w0)
    taken, final = np.empty(R, np.int64), np.empty(R)
    rec_loss = np.full((R, n_rec), np.nan)
    rec_v, rec_w = np.full((R, n_rec, m), np.nan, dt), np.full((R, n_rec, n), np.nan, dt)
    for r in range(R):
        vs = v_star[r] if stride else v_star
        ws = w_star[r] if stride else w_star
        v[r], w[r], taken[r], final[r], records = _reference_run(
            v0[r], w0[r], vs, ws, None if Z is None else Z[r], None if y is None else y[r],
            N, first_stream + r, ste, float(lr), steps, batch_size or 0, float(label_noise),
            float(tol or 0.0), key, dt, record_every)
        for k, (loss, vk, wk) in enumerate(records):
            rec_loss[r, k], rec_v[r, k], rec_w[r, k] = loss, vk, wk
    return ds.EnsembleResult.from_runs(v, w, taken, final, v_star, w_star, steps, success_tol,
                                       record_every, rec_loss, rec_v, rec_w)
