"""Input variants shared by the fast-vs-reference tests (Bottleneck style):
every array a test feeds to a fast function also goes, unchanged, to its
reference twin, in many memory layouts."""

import numpy as np


def layouts(a):
    """(name, array) pairs with a's values in different memory layouts."""
    yield "c", np.ascontiguousarray(a)
    yield "fortran", np.asfortranarray(a)
    ro = np.array(a, copy=True)
    ro.setflags(write=False)
    yield "readonly", ro
    big = np.zeros(tuple(2 * s for s in a.shape), dtype=a.dtype)
    strided = big[tuple(slice(None, None, 2) for _ in a.shape)]
    strided[...] = a
    yield "strided", strided
    if a.ndim >= 2:
        t = np.ascontiguousarray(np.swapaxes(a, -1, -2))
        yield "transposed-view", np.swapaxes(t, -1, -2)
    yield "misaligned", misaligned(a)


def misaligned(a):
    """A C-contiguous copy of a whose data start one byte past an aligned
    address (a view of a byte buffer, as from a file or a socket)."""
    a = np.asarray(a)
    raw = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = raw[1:].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert a.size == 0 or a.dtype.alignment == 1 or not out.flags.aligned
    return out


def elementwise_inputs(rng):
    """Arrays for elementwise kernels: sizes 0, 1, odd, 2-d, special values."""
    special = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1.5, -1.5, np.inf, -np.inf, np.nan,
                        np.nextafter(0, 1), np.nextafter(1, 0), np.nextafter(1, 2),
                        np.nextafter(-1, 0), np.nextafter(-1, -2)])
    yield special
    yield np.empty(0)
    yield np.array([0.3])
    yield rng.standard_normal(37) * 2
    yield rng.standard_normal((7, 5)) * 2
    yield rng.standard_normal((3, 4, 5)) * 2


def model_problem(rng, B, m, n, dtype=np.float64):
    Z = rng.standard_normal((B, m, n)) if B is not None else rng.standard_normal((m, n))
    vecs = [rng.standard_normal(k) for k in (m, n, m, n)]
    return [np.asarray(x, dtype=dtype) for x in [Z, *vecs]]


def ambiguous_samples(Z, w, w_star, rel):
    """Samples with a row whose z.w or z.w* is so close to a window edge
    (0, 1 or -1) that rounding in a different summation order could flip
    sigma or mu'; fast and reference may legitimately differ there, so
    comparisons leave them out."""
    Z64 = np.asarray(Z, dtype=np.float64)
    Zb = Z64[None] if Z64.ndim == 2 else Z64
    bad = np.zeros(Zb.shape[0], dtype=bool)
    for u in (w, w_star):
        u = np.asarray(u, dtype=np.float64)
        scale = np.abs(Zb) @ np.abs(u) + 1e-300
        zu = Zb @ u
        for edge in (0.0, 1.0, -1.0):
            bad |= np.any(np.abs(zu - edge) <= rel * scale, axis=-1)
    return bad


def registry_surrogates():
    """Registry surrogates other than the named windows: every C kind, open
    and closed ends, an unbounded piece; every jump at 0 or +-1, where
    ambiguous_samples looks."""
    from stefast import surrogates as S

    return [S.approx_sign(), S.swish_sign(), S.tanh(2.0, scale=0.5), S.tanh(1.0, 1.0, 0.001),
            S.sigmoid(3.0), S.window(-1.0, 0.0, closed=(False, True), scale=2.5),
            S.piecewise_polynomial([-np.inf, -1, 0, 1], [[0.5], [1, 2, 3], [4, -1]])]


def population_points(rng, count=300):
    """One-point inputs (v, w, v_star, w_star) of the closed forms, 1-d float64
    arrays: random sizes and angles with each argument at its own scale from
    1e-300 to 1e300 (every second point), then the edges: w = 0, theta
    exactly 0 or pi and within rounding of them, entries of far apart
    scales in one vector, n = 1, v = v*, v orthogonal to v*, the issue's
    reproducers (issue 19), and v large enough to overflow a result."""
    for k in range(count):
        m, n = (int(x) for x in rng.integers(1, 7, size=2))
        scale = 10.0 ** rng.uniform(-300, 300, 4) if k % 2 else np.ones(4)
        yield tuple(rng.standard_normal(size) * s for size, s in zip((m, n, m, n), scale))
    v, v_star = np.array([1.0, -0.5, 2.0]), np.array([0.5, 1.0, 1.5])
    w_star = np.array([0.3, -1.2, 0.7])
    perp = np.array([1.2, 0.3, 0.0])  # orthogonal to w_star
    for w in (np.zeros(3), 2.5 * w_star, -w_star, -1e-300 * w_star, 1e300 * w_star,
              w_star + 1e-17 * perp, w_star + 1e-12 * perp, -w_star + 1e-12 * perp,
              perp, 1e-300 * w_star + 1e-310 * perp):
        yield v, w, v_star, w_star
        yield v_star.copy(), w, v_star, w_star
    yield np.array([1.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0, -1.0]), np.array([2.0, 1.0])
    yield np.array([0.0, 0.0]), np.array([1.0, 2.0]), np.array([0.0, 0.0]), np.array([2.0, 1.0])
    for w, w_star in (([1.0, 1e-300, 0.0], [1.0, 0.0, 0.0]), ([-1e-200, 0.0], [1.0, 0.0]),
                      ([1e300, 1e300], [1.0, 0.0]), ([1.0, 1.0], [1e-200, 0.0]),
                      ([1e308, 1e308], [-1.0, -1.0]), ([5e-324, 0.0], [0.0, 1e308]),
                      ([1.0], [-3.0]), ([2.0], [1e-300])):
        yield v, np.array(w), v_star, np.array(w_star)
    yield np.array([1e150, 2e150]), np.array([1.0, 0.3]), np.array([1.0, 1.0]), np.array([0.2, 1.0])
    yield (np.array([1e200, -3e200]), np.array([1.0, 0.3]), np.array([2e200, 1.0]),
           np.array([0.2, 1.0]))


def invalid_population_points():
    """(name of the bad argument, v, w, v_star, w_star): one-point inputs of
    the right shapes that the closed forms refuse (NaN, inf, w* = 0)."""
    good = dict(v=np.array([1.0, 2.0]), w=np.array([1.0, 0.0, 0.5]),
                v_star=np.array([0.5, 1.0]), w_star=np.array([0.0, 1.0, 0.0]))
    for name in good:
        for bad in (np.nan, np.inf, -np.inf):
            args = {k: a.copy() for k, a in good.items()}
            args[name][-1] = bad
            yield name, *args.values()
    yield "w_star", *{**good, "w_star": np.zeros(3)}.values()
