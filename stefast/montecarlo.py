"""Monte Carlo estimates of E[loss], E[dl/dv] and E[g_mu] with standard errors.

Layers (one name chain; the samplers: docs/math.rst, section "Monte Carlo
samplers"):

    monte_carlo (here)       validation, seeding, the basis Q, super-block loop
    _core.mc_accumulate      dtype dispatch, GIL released
    stefast_mc_accumulate_*  src_c/montecarlo.c: samples, block sums, Chan fold
    normal_impl.h            xoshiro256++ lanes seeded by Threefry2x64-20;
                             ziggurat (float64), Box-Muller (float32)

Reproducibility. ``np.random.default_rng(rng)`` is called once and two
64-bit words ``gen.integers(0, 2**64, size=2, dtype=np.uint64)`` become the
generator key (so an int seed or SeedSequence is reproducible, and a
Generator passed twice gives two independent keys). Sample b (counting from
0, plus ``start``) draws its normals from stream b under that key: a
sample's value depends only on (key, b). Blocks of ``BLOCK`` samples
(fewer when a sample is large: ``block_samples``, a function of the
problem only) are summed in double and folded in block order, so the
result is bitwise identical for any ``threads`` and any super-block size
(the loop that gives progress reports and Ctrl-C checks between C calls).
Runs of more than about a second of work are reduced in pieces of whole
blocks (``task_ranges``, a function of the problem and n_samples only)
merged in order, here or as the tasks of an ``executor=``: the same bits
either way.
"""

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from stefast import _core
from stefast import _tasks
from stefast import _validation as val
from stefast._geometry import orthonormal_basis
from stefast._optional import require
from stefast.surrogates import c_argument

__all__ = ["MCEstimate", "monte_carlo", "METHODS", "mc_basis", "mc_key", "standard_normals",
           "task_ranges"]

METHODS = ("full", "projected", "conditional")

#: samples per block: the unit of the block-ordered reduction (part of
#: what makes results reproducible bit for bit), fewer for large samples
#: (block_samples)
BLOCK = 256

#: the most work per block, in "normal-equivalents": a C call covers whole
#: blocks, and Ctrl-C is only seen between calls
_BLOCK_WORK = 1 << 24

_UINT64_MAX = 2**64 - 1

#: work per C call, in "normal-equivalents" per thread: long enough to hide the
#: call, short enough for Ctrl-C and the progress bar
_CALL_WORK = 1 << 24


@dataclass(frozen=True, eq=False)
class MCEstimate:
    """A Monte Carlo estimate with standard errors; ``merge`` combines runs.

    Attributes
    ----------
    loss, grad_v, grad_w : float, ndarray (m,), ndarray (n,)
        Sample means of the loss, the exact dl/dv and the coarse gradient
        g_mu (for ``method="conditional"``: the mean of E[g_mu | S]).
    loss_se, grad_v_se, grad_w_se :
        Standard errors sqrt(var / n_samples) of those means, from the
        per-sample values of the estimator used (for "conditional" these
        are the standard errors of the Rao-Blackwellised estimator, smaller
        than those of "full" or "projected").
    n_samples : int
    method : str
    ste : str or stefast.surrogates.Surrogate
        The surrogate (a registry window equal to a named one is its name).
    dtype : numpy.dtype
        Precision the samples were computed in (the means are float64).
    m2 : ndarray (1 + m + n,)
        Sums of squared deviations from the mean of [loss, grad_v, grad_w],
        the state ``merge`` needs (Chan et al.'s parallel update).
    segments : tuple of (key0, key1, start, stop)
        The sample streams used; ``merge`` refuses two estimates that share
        samples (same key, overlapping ranges), which are not independent.
    """

    loss: float
    grad_v: np.ndarray
    grad_w: np.ndarray
    loss_se: float
    grad_v_se: np.ndarray
    grad_w_se: np.ndarray
    n_samples: int
    method: str
    ste: object  # a name in STES or a stefast.surrogates.Surrogate
    dtype: np.dtype
    m2: np.ndarray = field(repr=False)
    segments: tuple = field(repr=False, default=())

    @classmethod
    def _from_moments(cls, mean, m2, count, method, ste, dtype, m, segments, exps=None):
        """exps (width,): the mean and the standard errors are multiplied by
        2**exps (undoing ``v_scale``), m2 by 2**(2 exps), which may overflow
        to inf where the standard error does not."""
        mean = np.asarray(mean, dtype=np.float64)
        m2 = np.maximum(np.asarray(m2, dtype=np.float64), 0.0)
        se = np.sqrt(m2 / (count - 1) / count)
        if exps is not None:
            with np.errstate(over="ignore"):
                mean, se, m2 = np.ldexp(mean, exps), np.ldexp(se, exps), np.ldexp(m2, 2 * exps)
        for a in (mean, m2, se):
            a.setflags(write=False)
        return cls(float(mean[0]), mean[1:1 + m], mean[1 + m:], float(se[0]), se[1:1 + m],
                   se[1 + m:], int(count), method, ste, np.dtype(dtype), m2, tuple(segments))

    def merge(self, other):
        """Combine with an independent estimate of the same quantity.

        Exact pooling (Chan et al.): the mean and the sum of squared
        deviations of the union of both sample sets, as if one run had
        drawn them all. Both must use the same method, surrogate, shapes and
        dtype, and must not share samples (same key and overlapping sample
        ranges); runs split across processes use either different seeds or
        the same seed with disjoint ``start`` ranges.

        Parameters
        ----------
        other : MCEstimate
            An independent estimate of the same quantity.

        Returns
        -------
        MCEstimate
            The estimate from the samples of both.

        Examples
        --------
        >>> import numpy as np, stefast
        >>> v, w = np.ones(3), np.array([1.0, 0.0])
        >>> a = stefast.monte_carlo(v, w, v, -w, n_samples=1000, rng=1)
        >>> b = stefast.monte_carlo(v, w, v, -w, n_samples=1000, rng=1, start=1000)
        >>> a.merge(b).n_samples
        2000
        """
        if not isinstance(other, MCEstimate):
            raise TypeError(f"other must be an MCEstimate, got {type(other).__name__}")
        for name in ("method", "ste", "dtype"):
            if getattr(self, name) != getattr(other, name):
                raise ValueError(f"cannot merge estimates with different {name}: "
                                 f"{getattr(self, name)!r} and {getattr(other, name)!r}")
        if self.grad_v.shape != other.grad_v.shape or self.grad_w.shape != other.grad_w.shape:
            raise ValueError(
                f"cannot merge estimates of different shapes: (m, n) = "
                f"{(self.grad_v.size, self.grad_w.size)} and {(other.grad_v.size, other.grad_w.size)}")
        for k0, k1, a0, a1 in self.segments:
            for q0, q1, b0, b1 in other.segments:
                if (k0, k1) == (q0, q1) and a0 < b1 and b0 < a1:
                    raise ValueError(
                        "the two estimates share samples (same rng key and overlapping "
                        f"sample ranges [{a0}, {a1}) and [{b0}, {b1})); they are not "
                        "independent. Use different seeds or disjoint start ranges.")
        mean_a = np.concatenate([[self.loss], self.grad_v, self.grad_w])
        mean_b = np.concatenate([[other.loss], other.grad_v, other.grad_w])
        na, nb = self.n_samples, other.n_samples
        n = na + nb
        delta = mean_b - mean_a
        mean = mean_a + delta * (nb / n)
        m2 = self.m2 + other.m2 + delta * delta * (na * nb / n)
        return MCEstimate._from_moments(mean, m2, n, self.method, self.ste, self.dtype,
                                        self.grad_v.size,
                                        _coalesce(self.segments + other.segments))


def _coalesce(segments):
    """Sample streams as few ranges as possible: touching ranges of one key
    become one, so merging the pieces of a long run in order stays O(1) per
    merge (the overlap check compares every pair of segments)."""
    out = []
    for seg in sorted(segments):
        if out and out[-1][:2] == seg[:2] and out[-1][3] == seg[2]:
            out[-1] = (*seg[:2], out[-1][2], seg[3])
        else:
            out.append(seg)
    return tuple(out)


def mc_key(rng):
    """The generator key (two uint64 words) drawn from ``default_rng(rng)``."""
    gen = val.check_rng(rng)
    return np.ascontiguousarray(gen.integers(0, 2**64, size=2, dtype=np.uint64))


def v_scale(v, v_star, n):
    """(t, exps): v and v_star are multiplied by the power of two t, and the
    statistics [loss, grad_v (m), grad_w (n)] of the scaled model by
    2**exps, that is 2**(2e), 2**e and 2**(2e) for t = 2**-e; t = 1
    (exps None) when max(|v|, |v*|) lies in [2**-32, 2**32].

    The loss and g_mu are quadratic in (v, v*) jointly and grad_v is
    linear, while sigma and the windows do not depend on v: scaling by a
    power of two is exact, and keeps r**2 and the sums of squared
    deviations (~ r**4) from overflowing or underflowing where the answer
    is representable.
    """
    top = max(float(np.max(np.abs(v))), float(np.max(np.abs(v_star))))
    e = math.frexp(top)[1] if top > 0 else 0
    if -32 <= e <= 32:
        return 1.0, None
    return math.ldexp(1.0, -e), np.concatenate([[2 * e], np.full(v.size, e), np.full(n, 2 * e)])


def check_sample_range(n_samples, start):
    """(n_samples, start): sample indices [start, start + n_samples) are int64 in C."""
    n_samples = val.check_int(n_samples, "n_samples", 2, val.INT64_MAX)
    start = val.check_int(start, "start", 0, val.INT64_MAX)
    if start > val.INT64_MAX - n_samples:
        raise ValueError(
            f"start + n_samples must be <= 2**63 - 1 (sample indices are 64-bit), got "
            f"start = {start} and n_samples = {n_samples}; use start <= "
            f"{val.INT64_MAX - n_samples}")
    return n_samples, start


def mc_basis(w, w_star):
    """Orthonormal rows Q (k, n), k <= 2, spanning {w, w_star}, and the
    coordinates alpha = Q w, beta = Q w_star (docs/math.rst, section
    "Monte Carlo samplers"), float64.

    The first row is w/|w| (if w != 0); the second is the normalised part of
    w_star orthogonal to it, dropped when it is below rounding (w parallel to
    w_star, theta in {0, pi}) or when w_star = 0.
    """
    w = np.asarray(w, dtype=np.float64)
    w_star = np.asarray(w_star, dtype=np.float64)
    Q = orthonormal_basis([w, w_star])
    return Q, Q @ w, Q @ w_star


def _sample_cost(method, m, n, k):
    """Work of one sample in normal-equivalents."""
    return {"full": 2 * m * n, "projected": m * k + 2 * n + 4 * m,
            "conditional": m * k + 4 * m + 16}[method]


def block_samples(method, m, n, k):
    """Samples per block: BLOCK, halved until a block is at most _BLOCK_WORK.

    A function of the problem only (not of threads or call sizes), so the
    bits of a result do not change with them; large samples get small
    blocks so that one C call, and with it the wait for Ctrl-C, stays short.
    """
    cost, block = _sample_cost(method, m, n, k), BLOCK
    while block > 1 and cost * block > _BLOCK_WORK:
        block //= 2
    return block


def task_ranges(method, m, n, k, n_samples):
    """(offset, count) of each task of a run of n_samples: its pieces, which
    are reduced separately and merged in order (MCEstimate.merge).

    Every piece but the last has c samples, c the smallest multiple of the
    block with c * (work per sample) >= TASK_WORK (about a second on one
    core) and at most MAX_TASKS pieces; the last takes the remainder (c to
    2c - 1 samples, never a piece of one sample). A function of the problem
    and n_samples only: the pieces, and so the bits, are the same here and
    on any executor with any number of workers.
    """
    block = block_samples(method, m, n, k)
    per_block = _sample_cost(method, m, n, k) * block
    blocks = max(-(-_tasks.TASK_WORK // per_block),
                 -(-n_samples // (block * _tasks.MAX_TASKS)))
    c = blocks * block
    pieces = max(1, n_samples // c)
    return [(j * c, c if j < pieces - 1 else n_samples - j * c) for j in range(pieces)]


def _call_samples(method, m, n, k, threads, block):
    """Samples per C call (a multiple of block): about _CALL_WORK per thread."""
    blocks = max(1, (_CALL_WORK * threads) // (_sample_cost(method, m, n, k) * block))
    return blocks * block


def monte_carlo(v, w, v_star, w_star, *, ste="relu", n_samples, method="full", rng=None,
                threads=None, dtype=np.float64, progress=False, start=0, executor=None):
    """Monte Carlo estimate of E[loss], E[dl/dv] and E[g_mu] over Gaussian Z.

    Parameters
    ----------
    v : array_like, shape (m,)
        Student second-layer weights.
    w : array_like, shape (n,)
        Student filter (any values; w = 0 is the model Zw = 0).
    v_star : array_like, shape (m,)
        Teacher second-layer weights.
    w_star : array_like, shape (n,)
        Teacher filter (any values).
    ste : {"identity", "relu", "clipped_relu", "hardtanh"} or stefast.surrogates object
        The surrogate derivative mu' of the coarse gradient; any registry
        surrogate runs in C with every method.
    n_samples : int >= 2
        Number of samples of Z.
    method : {"full", "projected", "conditional"}
        "full" draws all m*n entries of each Z (in C, one cache-resident
        sample at a time, fused with the forward/backward pass). "projected"
        draws S = Z Q^T (m x 2) and n more normals, exact in distribution
        (docs/math.rst, section "Monte Carlo samplers"). "conditional" averages E[g | S] (Rao-Blackwell),
        O(m) per sample, with smaller variance; its loss and grad_v are the
        same per-sample quantities as the other methods.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Passed to ``numpy.random.default_rng`` once; the C generator's key is
        ``gen.integers(0, 2**64, size=2, dtype=uint64)``.
    threads : int, optional
        OpenMP threads, 1 to ``MAX_THREADS`` (1024; more is a ValueError);
        None: every core, at most 1024. Results are bitwise identical for
        any value.
    dtype : numpy.float32 or numpy.float64
        Precision of the samples; sums, means and standard errors are
        accumulated in float64 either way.
    progress : bool
        Show a tqdm bar on stderr (only if stderr is a terminal), updated
        after each C call (tens of milliseconds).
    start : int >= 0
        Index of the first sample: the same rng with disjoint
        [start, start + n_samples) ranges gives pieces of one long run, to
        ``merge`` across processes. Sample indices are 64-bit:
        ``start + n_samples <= 2**63 - 1``, else ValueError.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        None runs here. Otherwise the samples are cut into tasks (below),
        submitted to the executor and merged in task order: the result is
        bitwise the one of ``executor=None``, for any number of workers and
        any order in which the tasks finish. ``threads`` is then per task
        (None: 1). Processes and Dask workers need the arguments to pickle
        (every stefast surrogate does).

    Returns
    -------
    MCEstimate
        Means and standard errors of the loss, dl/dv and g_mu.

    Notes
    -----
    The generator is stefast's own (16 xoshiro256++ lanes per sample,
    seeded by the counter-based Threefry2x64-20; a ziggurat for float64,
    Box-Muller for float32), not NumPy's: the numbers differ from
    ``stefast.reference.monte_carlo`` (which uses ``standard_normal``), the
    distributions do not. Ctrl-C raises KeyboardInterrupt within one C call
    (well under a second); nothing is left half-updated.

    Tasks. A run is reduced in pieces (:func:`stefast.montecarlo.task_ranges`):
    every piece but the last has c samples, the smallest whole number of
    summation blocks with at least ``2**30`` normal-equivalents of work
    (about a second on one core; a sample of ``method="full"`` costs 2 m n of
    them) and at most ``2**14`` pieces per run; the last piece takes the
    remainder. Each piece is one task; pieces are merged in order with
    :meth:`MCEstimate.merge`. The cut depends only on the problem and
    ``n_samples``, so local and distributed runs agree bit for bit (a run of
    one piece is a single block-ordered reduction, as before pieces).

    Examples
    --------
    >>> import numpy as np, stefast
    >>> v, w = np.ones(4), np.array([1.0, 0.0, 0.0])
    >>> est = stefast.monte_carlo(v, w, v, w, n_samples=1000, rng=0)
    >>> est.loss   # student == teacher: every sample has loss 0
    0.0
    """
    v, w, v_star, w_star = val.check_weights(v, w, v_star, w_star)
    ste = val.check_ste(ste)
    method = val.check_choice(method, "method", METHODS)
    n_samples, start = check_sample_range(n_samples, start)
    dtype = val.check_float_dtype(dtype)
    executor = val.check_executor(executor)
    threads = _tasks.task_threads(executor, threads)
    progress = bool(progress)
    key = mc_key(rng)
    m, n = v.size, w.size

    Q, alpha, beta = mc_basis(w, w_star)
    k = Q.shape[0]
    Q64 = np.asarray(Q, dtype=np.float64)
    if method == "full":
        Q, alpha, beta = np.zeros(0), np.zeros(0), np.zeros(0)
    t, exps = v_scale(v, v_star, w.size)
    cast = tuple(np.ascontiguousarray(a, dtype=dtype).reshape(-1)
                 for a in (v * t, w, v_star * t, w_star, Q, alpha, beta))
    problem = _Problem(cast, k, m, n, ste, method, dtype, Q64, key,
                       block_samples(method, m, n, k))
    pieces = [(start + a, c) for a, c in task_ranges(method, m, n, k, n_samples)]

    bar = None
    if progress and sys.stderr is not None and sys.stderr.isatty():
        tqdm = require("tqdm.auto", "monte_carlo(progress=True)").tqdm
        bar = tqdm(total=n_samples, unit="sample", unit_scale=True,
                   desc=f"monte_carlo[{method}]", file=sys.stderr)
    try:
        if executor is None:
            done = [0]

            def report(chunk):
                done[0] += chunk
                if bar is not None:
                    bar.update(chunk)
            try:
                parts = [_mc_piece(problem, a, c, threads, report) for a, c in pieces]
            except KeyboardInterrupt:
                raise KeyboardInterrupt(
                    f"monte_carlo interrupted after {done[0]} of {n_samples} samples") from None
        else:
            parts = _tasks.run_tasks(
                executor, _mc_piece, [(problem, a, c, threads) for a, c in pieces],
                [f"monte_carlo samples [{a}, {a + c})" for a, c in pieces],
                on_result=None if bar is None else lambda i, est: bar.update(est.n_samples))
    finally:
        if bar is not None:
            bar.close()
    # in task order, whoever computed them: the same bits as the loop above
    est = parts[0]
    for part in parts[1:]:
        est = est.merge(part)
    if exps is None:
        return est
    # the pieces are statistics of the scaled model (v_scale): undone once, on
    # the merged moments, so no piece's m2 overflows where the answer does not
    mean = np.concatenate([[est.loss], est.grad_v, est.grad_w])
    return MCEstimate._from_moments(mean, est.m2, est.n_samples, method, ste, dtype, m,
                                    est.segments, exps)


@dataclass(frozen=True)
class _Problem:
    """What a piece of a Monte Carlo run needs (pickled to workers)."""

    cast: tuple  # v*t, w, v_star*t, w_star, Q, alpha, beta in the sample dtype
    k: int
    m: int
    n: int
    ste: object
    method: str
    dtype: np.dtype
    Q: np.ndarray  # float64 basis, for the conditional method's mapping
    key: np.ndarray
    block: int


def _mc_piece(p, first, count, threads, report=None):
    """The estimate from samples [first, first + count): C calls of whole
    blocks from a fresh accumulator (report(samples) after each)."""
    method_code = _core.MC_METHOD_CODES[p.method]
    width = _core.mc_width(method_code, p.m, p.n, p.k)
    n_done = np.zeros(1, dtype=np.int64)
    mean = np.zeros(width, dtype=np.float64)
    m2 = np.zeros(width, dtype=np.float64)
    step = _call_samples(p.method, p.m, p.n, p.k, threads, p.block)
    ste_code = c_argument(p.ste)
    done = 0
    while done < count:
        chunk = min(step, count - done)
        _core.mc_accumulate(*p.cast, p.k, p.m, p.n, ste_code, method_code, p.key, first + done,
                            chunk, p.block, n_done, mean, m2, threads)
        done += chunk
        if report is not None:
            report(chunk)
    if p.method == "conditional":
        mean, m2 = _conditional_to_g(mean, m2, p.Q, p.m) if p.k else (
            np.concatenate([mean, np.zeros(p.n)]), np.concatenate([m2, np.zeros(p.n)]))
    segments = ((int(p.key[0]), int(p.key[1]), first, first + count),)
    return MCEstimate._from_moments(mean, m2, int(n_done[0]), p.method, p.ste, p.dtype, p.m,
                                    segments)


def _conditional_to_g(mean, m2, Q, m):
    """Map the conditional method's statistics of c = S^T a (k numbers, and
    c_0 + c_1) to those of g = Q^T c, component by component."""
    k = Q.shape[0]
    c_mean, c_m2 = mean[1 + m:1 + m + k], m2[1 + m:1 + m + k]
    g_mean = Q.T @ c_mean
    g_m2 = (Q.T ** 2) @ c_m2
    if k == 2:  # cross term from M2(c_0 + c_1) = M2_00 + M2_11 + 2 M2_01
        m2_01 = 0.5 * (m2[1 + m + 2] - c_m2[0] - c_m2[1])
        g_m2 = g_m2 + 2.0 * Q[0] * Q[1] * m2_01
    return (np.concatenate([mean[:1 + m], g_mean]),
            np.concatenate([m2[:1 + m], np.maximum(g_m2, 0.0)]))


def standard_normals(shape, *, rng=None, stream=0, dtype=np.float64, threads=None):
    """Standard normals from stefast's generator: ``shape = (..., L)`` holds
    streams ``stream, stream + 1, ...`` (one per row), L values each.

    The raw generator behind ``monte_carlo`` (src_c/normal_impl.h; key from
    ``default_rng(rng)`` as there), for statistical tests and benchmarks.

    Parameters
    ----------
    shape : int or tuple of int
        Output shape; the last axis is the length of each stream.
    rng : None, int, SeedSequence, BitGenerator or Generator
        Seed, passed to ``numpy.random.default_rng`` once for the key.
    stream : int >= 0
        Index of the first stream.
    dtype : numpy.float32 or numpy.float64
        float64 values come from a ziggurat, float32 from Box-Muller.
    threads : int, optional
        OpenMP threads (None: every core); the values never depend on it.

    Returns
    -------
    ndarray
        Standard normal numbers of the given shape and dtype.

    Examples
    --------
    >>> import stefast
    >>> stefast.standard_normals((2, 3), rng=0).shape
    (2, 3)
    """
    dtype = val.check_float_dtype(dtype)
    shape = tuple(val.check_positive_int(s, "shape", minimum=0) for s in np.atleast_1d(shape))
    threads = val.check_threads(threads)
    length = shape[-1] if shape else 1
    nstreams = math.prod(shape[:-1]) if length else 0
    # streams are 64-bit unsigned: the last one must not wrap round to stream 0
    stream = val.check_int(stream, "stream", 0, _UINT64_MAX - max(nstreams - 1, 0))
    key = mc_key(rng)
    out = np.empty(shape, dtype=dtype)
    _core.normals(key, stream, out.reshape(-1), nstreams, length, threads)
    return out
