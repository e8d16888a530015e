"""Argument checks shared by the fast path and the reference.

Every message names the argument, what was expected and what was received,
so a user reads "v has length 5 but Z has 7 rows (Z.shape[-2])" instead of a
Cython buffer error. Nothing here computes a result.
"""

import concurrent.futures
import json
import operator
import os
from pathlib import Path

import numpy as np

STES = ("identity", "relu", "clipped_relu", "hardtanh")
REDUCTIONS = ("mean", "sum", "none")


def result_dtype(*arrays_and_names):
    """float32 if every input is float32, else float64 (NumPy promotion)."""
    dtypes = []
    for a, name in arrays_and_names:
        dt = a.dtype
        if dt.kind == "c":
            raise TypeError(f"{name} must be real, got complex dtype {dt}")
        if dt.kind not in "biuf":
            raise TypeError(f"{name} must have a real numeric dtype, got dtype {dt}")
        dtypes.append(dt)
    dt = np.result_type(*dtypes) if dtypes else np.dtype(np.float64)
    # by kind and size, so a non-native byte order (">f4") still counts as float32
    return np.dtype(np.float32) if (dt.kind, dt.itemsize) == ("f", 4) else np.dtype(np.float64)


def _asarray(x, name):
    try:
        return np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be array-like of real numbers: {exc}") from None


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _aligned(a):
    """a, or a copy of it if its data are not aligned for its dtype: C may
    read a double only at a multiple of 8 bytes (a view of a byte buffer at
    an odd offset is not), even where the CPU itself does not mind."""
    return a if a.flags.aligned else a.copy()


def as_float_array(x, name):
    """x as an aligned float32/float64 array (float32 stays, other reals
    become float64)."""
    if type(x) is np.ndarray and x.dtype in _FLOATS:
        return _aligned(x)  # the common case, without the promotion machinery
    a = _asarray(x, name)
    return _aligned(a.astype(result_dtype((a, name)), copy=False))


def as_float_arrays(*named):
    """Several inputs converted to aligned arrays of one common float dtype
    (NumPy promotion)."""
    # The common case first: arrays that all hold NumPy's own float64 or
    # float32 descriptor, returned as they are. Plain loops, no promotion
    # machinery: a kernel call made right after a pass over a large Z finds
    # Python's caches cold, where the general path was a large part of the
    # call (docs/performance.rst).
    first = named[0][1]
    dt = first.dtype if type(first) is np.ndarray else None
    if dt is _FLOATS[0] or dt is _FLOATS[1]:
        arrays = []
        for _, x in named:
            if type(x) is not np.ndarray or x.dtype is not dt or not x.flags.aligned:
                break
            arrays.append(x)
        else:
            return tuple(arrays)
    arrays = [(_asarray(x, name), name) for name, x in named]
    dt = result_dtype(*arrays)
    return tuple(_aligned(a.astype(dt, copy=False)) for a, _ in arrays)


def check_same_shape(a, a_name, b, b_name):
    if a.shape != b.shape:
        raise ValueError(
            f"{b_name} must have the shape of {a_name} {a.shape}, got shape {b.shape}"
        )


def check_choice(value, name, choices):
    """value must be one of the strings in choices."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_ste(ste):
    """A name in STES, or a stefast.surrogates object.

    A registry window equal to a named one comes back as that name (its C
    code and closed forms are the named STE's); any other registry object
    comes back as it is.
    """
    if isinstance(ste, str):
        return check_choice(ste, "ste", STES)
    if is_registry_surrogate(ste):
        return ste.named or ste
    raise ValueError(  # a ValueError, as for an unknown name
        f"ste must be one of {', '.join(map(repr, STES))} or a stefast.surrogates object "
        f"(such as stefast.surrogates.swish_sign(5.0)); got {type(ste).__name__}"
    )


def is_registry_surrogate(ste):
    from stefast.surrogates import Surrogate  # the registry imports this module

    return isinstance(ste, Surrogate)


def check_reduce(reduce):
    return check_choice(reduce, "reduce", REDUCTIONS)


# read once: os.cpu_count() reads a file under /sys on every call, which is
# slow when a kernel call follows a pass over a large array
_CORES = os.cpu_count() or 1

#: the most threads a kernel accepts: each OpenMP thread allocates its own
#: stack and scratch, and far more threads than any machine has cores only
#: exhausts memory (10**9 threads asked the runtime for about 224 GB)
MAX_THREADS = 1024

#: integers the C layer takes as int64_t
INT64_MAX = 2**63 - 1


def check_int(value, name, minimum=None, maximum=None, expected="an integer"):
    """value as a Python int in [minimum, maximum] (None: unbounded).

    NumPy integers are accepted; bools, floats and strings are not (True is
    not a count and "3" is not a number), and the message names the argument
    and says what was ``expected``.
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be {expected}, got bool {value!r}")
    try:
        k = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be {expected}, got {type(value).__name__} "
                        f"{_short_repr(value)}") from None
    if (minimum is not None and k < minimum) or (maximum is not None and k > maximum):
        lo = "" if minimum is None else f">= {minimum}"
        hi = "" if maximum is None else f"<= {maximum}"
        raise ValueError(f"{name} must be {expected} {' and '.join(filter(None, (lo, hi)))}, "
                         f"got {k}")
    return k


def _short_repr(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_threads(threads):
    """None means every core (at most MAX_THREADS); otherwise 1..MAX_THREADS."""
    if threads is None:
        return min(_CORES, MAX_THREADS)
    if type(threads) is int and 1 <= threads <= MAX_THREADS:
        return threads
    return check_int(threads, "threads", 1, MAX_THREADS, expected="None or an integer")


def is_dask_client(obj):
    """True for a dask.distributed.Client, recognised without importing dask
    (which is optional and slow to import)."""
    return callable(getattr(obj, "submit", None)) and any(
        c.__module__.split(".")[0] == "distributed" and c.__name__ == "Client"
        for c in type(obj).__mro__)


def check_executor(executor, name="executor"):
    """None (run here), a concurrent.futures.Executor or a dask.distributed.Client."""
    if executor is None or isinstance(executor, concurrent.futures.Executor) \
            or is_dask_client(executor):
        return executor
    raise TypeError(f"{name} must be None, a concurrent.futures.Executor or a "
                    f"dask.distributed.Client; got {type(executor).__name__} "
                    f"{_short_repr(executor)}")


def check_positive_int(value, name, minimum=1):
    return check_int(value, name, minimum, INT64_MAX)


def check_real(value, name):
    """value as a Python float; bools and strings are refused (not numbers here)."""
    if isinstance(value, (str, bytes, bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} "
                        f"{_short_repr(value)}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}") from None


def check_model_inputs(Z, v, w, v_star=None, w_star=None):
    """Validate Z (m, n) or (B, m, n), v (m,), w (n,) [, v_star (m,), w_star (n,)].

    Returns the arrays converted to one common float dtype. m and n must be
    >= 1; an empty batch (B = 0) is allowed.
    """
    named = [("Z", Z), ("v", v), ("w", w)]
    if v_star is not None or w_star is not None:
        named += [("v_star", v_star), ("w_star", w_star)]
    arrays = as_float_arrays(*named)
    Z = arrays[0]
    if Z.ndim not in (2, 3):
        raise ValueError(
            f"Z must have shape (m, n) or (B, m, n), got {Z.ndim}-d array of shape {Z.shape}"
        )
    m, n = Z.shape[-2:]
    if m == 0 or n == 0:
        raise ValueError(f"Z must have m >= 1 rows and n >= 1 columns, got shape {Z.shape}")
    for (name, _), a, length in zip(named[1:], arrays[1:], (m, n, m, n)):
        if a.shape == (length,):
            continue
        what = "rows (Z.shape[-2])" if name.startswith("v") else "columns (Z.shape[-1])"
        if a.ndim != 1:
            raise ValueError(f"{name} must be 1-d of length {length}, got shape {a.shape}")
        raise ValueError(f"{name} has length {a.shape[0]} but Z has {length} {what}")
    return arrays


def check_out(out, shape, dtype, name="out"):
    """out must be a writeable ndarray of exactly this shape and dtype."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got dtype {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got shape {out.shape}")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only; pass a writeable array")
    return out


def _same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def output_buffer(out, shape, dtype, inputs=(), name="out"):
    """(buffer, out): a C-contiguous array to write a result into, and out checked.

    The buffer is out itself when out is C-contiguous, aligned, and either
    shares no memory with the arrays the kernel reads or is exactly one of
    them (an elementwise kernel reads each element before it writes it).
    Otherwise (out is None, strided, misaligned, or overlapping an input at
    an offset) it is a new array, which ``finish`` copies into out, as
    NumPy's ufuncs do.
    """
    if out is None:
        return np.empty(shape, dtype=dtype), None
    check_out(out, shape, dtype, name)
    if out.flags.c_contiguous and out.flags.aligned and all(
            _same_view(out, a) or not np.may_share_memory(out, a) for a in inputs):
        return out, out
    return np.empty(shape, dtype=dtype), out


def finish(buffer, out):
    """What a function with an out= argument returns once buffer holds the result."""
    if out is None or buffer is out:
        return buffer
    out[...] = buffer
    return out


def deliver(result, out, name="out"):
    """Return result, or copy it into a validated out and return out."""
    if out is None:
        return result
    check_out(out, result.shape, result.dtype, name)
    out[...] = result
    return out


def as_batched_vectors(*named, same_length=()):
    """float64 arrays of shape (..., k), k >= 1, finite, leading axes broadcast.

    ``named`` holds (name, array_like) pairs; ``same_length`` holds pairs of
    names whose last axes must agree. Returns read-only broadcast views.
    """
    arrays = {}
    for name, x in named:
        a = as_float_array(x, name).astype(np.float64, copy=False)
        if a.ndim == 0:
            raise ValueError(f"{name} must be a vector of shape (..., k), got a scalar")
        if a.shape[-1] == 0:
            raise ValueError(f"{name} must have length >= 1, got shape {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            raise ValueError(f"{name} must be finite, got {int(bad.sum())} inf/NaN entries")
        arrays[name] = a
    for first, second in same_length:
        k1, k2 = arrays[first].shape[-1], arrays[second].shape[-1]
        if k1 != k2:
            raise ValueError(f"{second} has length {k2} but {first} has length {k1}")
    try:
        batch = np.broadcast_shapes(*(a.shape[:-1] for a in arrays.values()))
    except ValueError:
        shapes = ", ".join(f"{name} {a.shape}" for name, a in arrays.items())
        raise ValueError(
            f"the leading (batch) axes do not broadcast: {shapes}; the last axis is "
            "the vector, every axis before it must broadcast"
        ) from None
    return tuple(np.broadcast_to(a, batch + a.shape[-1:]) for a in arrays.values())


def check_population_inputs(v, w, v_star, w_star, names=("v", "w")):
    """float64 v, w, v_star, w_star broadcast to one batch shape; w_star nonzero.

    ``names`` are the caller's names for v and w (``coarse_gradient_descent``
    calls them v0 and w0), so that messages name the caller's arguments.
    """
    nv, nw = names
    v, w, v_star, w_star = as_batched_vectors(
        (nv, v), (nw, w), ("v_star", v_star), ("w_star", w_star),
        same_length=((nv, "v_star"), (nw, "w_star")),
    )
    check_nonzero_vectors(w_star, "w_star")
    return v, w, v_star, w_star


def check_nonzero_vectors(a, name):
    """Every vector along the last axis of a must be nonzero."""
    zero = ~np.any(a != 0, axis=-1)
    if np.any(zero):
        where = "" if zero.ndim == 0 else f" (at batch index {tuple(np.argwhere(zero)[0])})"
        raise ValueError(f"{name} must be a nonzero vector, got all zeros{where}")


def check_surrogate_values(values, shape):
    """What a callable ste returned for an input of this shape."""
    if values.shape != tuple(shape):
        raise ValueError(
            f"ste callable returned shape {values.shape} for an input of shape "
            f"{tuple(shape)}; it must be vectorised: mu'(x) with x's shape"
        )
    if values.dtype.kind not in "biuf":
        raise TypeError(f"ste callable must return real numbers, got dtype {values.dtype}")
    if not np.all(np.isfinite(values)):
        raise ValueError("ste callable returned inf or NaN; mu'(x) must be finite")


def check_breakpoints(breakpoints):
    """Breakpoints of a surrogate: finite reals, returned sorted and unique (float64)."""
    b = as_float_array(breakpoints, "breakpoints").astype(np.float64, copy=False)
    if b.ndim > 1:
        raise ValueError(f"breakpoints must be a 1-d sequence of numbers, got shape {b.shape}")
    b = b.reshape(-1)
    if not np.all(np.isfinite(b)):
        raise ValueError(f"breakpoints must be finite, got {b.tolist()}")
    return np.unique(b)


def check_positive_float(value, name):
    """A finite real number > 0, as a Python float."""
    x = check_real(value, name)
    if not (x > 0 and np.isfinite(x)):
        raise ValueError(f"{name} must be a finite number > 0, got {x}")
    return x


def check_window_ends(lo, hi):
    """Window ends: reals with lo < hi (infinite ends allowed), as floats."""
    lo, hi = check_real(lo, "lo"), check_real(hi, "hi")
    if np.isnan(lo) or np.isnan(hi) or not lo < hi:
        raise ValueError(f"a window needs lo < hi (not NaN), got lo={lo}, hi={hi}")
    return lo, hi


def check_window_closed(closed):
    """closed: a bool for both ends, or a pair of bools (lo end, hi end)."""
    pair = (closed, closed) if isinstance(closed, (bool, np.bool_)) else closed
    try:
        lo_closed, hi_closed = pair
    except (TypeError, ValueError):
        raise TypeError(f"closed must be a bool or a pair of bools, got {closed!r}") from None
    if not all(isinstance(c, (bool, np.bool_)) for c in (lo_closed, hi_closed)):
        raise TypeError(f"closed must be a bool or a pair of bools, got {closed!r}")
    return bool(lo_closed), bool(hi_closed)


def check_piecewise(breakpoints, coefficients):
    """K + 1 increasing breakpoints (only the ends may be infinite) and K rows of
    finite coefficients, each of 1 to 9 values; returned as lists of floats."""
    b = np.asarray(as_float_array(breakpoints, "breakpoints"), dtype=np.float64)
    if b.ndim != 1 or b.size < 2:
        raise ValueError(f"breakpoints must be a 1-d sequence of at least 2 numbers, "
                         f"got shape {b.shape}")
    if np.any(np.isnan(b)) or not np.all(np.diff(b) > 0) or not np.all(np.isfinite(b[1:-1])):
        raise ValueError(f"breakpoints must increase strictly, with only the first and last "
                         f"allowed infinite; got {b.tolist()}")
    if b[0] == np.inf or b[-1] == -np.inf:
        raise ValueError(f"breakpoints cannot start at +inf or end at -inf, got {b.tolist()}")
    try:
        rows = [np.asarray(r, dtype=np.float64).reshape(-1) for r in coefficients]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"coefficients must be a sequence of sequences of numbers: {exc}") from None
    if len(rows) != b.size - 1:
        raise ValueError(f"coefficients must have one row per piece: {b.size - 1} for "
                         f"{b.size} breakpoints, got {len(rows)}")
    for i, r in enumerate(rows):
        if not 1 <= r.size <= 9 or not np.all(np.isfinite(r)):
            raise ValueError(f"coefficients[{i}] must hold 1 to 9 finite numbers (ascending "
                             f"powers of x, degree <= 8), got {r.tolist()}")
    return b.tolist(), [r.tolist() for r in rows]


def check_nonnegative_float(value, name):
    x = check_real(value, name)
    if not (x >= 0 and np.isfinite(x)):
        raise ValueError(f"{name} must be a finite number >= 0, got {x}")
    return x


def check_float_dtype(dtype, name="dtype"):
    """numpy.float32 or numpy.float64 (anything np.dtype accepts for them)."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be numpy.float32 or numpy.float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"{name} must be numpy.float32 or numpy.float64, got {dt}")
    return dt


def check_rng(rng, name="rng"):
    """np.random.default_rng(rng), with a message naming the argument.

    NumPy's own messages speak of SeedSequence's entropy; this one says what
    the argument may be and what it was.
    """
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"{name} must be None, a non-negative int seed, a SeedSequence, a "
                        f"BitGenerator or a Generator; got bool {rng!r}")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise TypeError(
            f"{name} must be None, a non-negative int seed (or a sequence of them), a "
            f"numpy.random.SeedSequence, a BitGenerator or a numpy.random.Generator; got "
            f"{type(rng).__name__} {_short_repr(rng)}"
        ) from None


def check_weights(v, w, v_star, w_star):
    """Finite 1-d float64 v, v_star (m,) and w, w_star (n,), m, n >= 1."""
    arrays = []
    for name, x in (("v", v), ("w", w), ("v_star", v_star), ("w_star", w_star)):
        a = as_float_array(x, name).astype(np.float64, copy=False)
        if a.ndim != 1 or a.shape[0] == 0:
            raise ValueError(f"{name} must be a non-empty 1-d vector, got shape {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite, got {int((~np.isfinite(a)).sum())} inf/NaN entries")
        arrays.append(a)
    v, w, v_star, w_star = arrays
    if v_star.shape != v.shape:
        raise ValueError(f"v_star has length {v_star.shape[0]} but v has length {v.shape[0]}")
    if w_star.shape != w.shape:
        raise ValueError(f"w_star has length {w_star.shape[0]} but w has length {w.shape[0]}")
    return v, w, v_star, w_star


def check_output_dir(path, name="--out"):
    """path as an existing, writeable directory (created with its parents).

    Refused with a message naming ``name``: an empty path, an existing file,
    a path under a file, or a place where this process cannot write.
    """
    text = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not text:
        raise ValueError(f"{name} must name a directory, got {path!r}")
    out = Path(text)
    if out.exists() and not out.is_dir():
        raise ValueError(f"{name} {text!r} exists and is not a directory")
    ancestor = out
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise ValueError(f"{name} {text!r} lies under {str(ancestor)!r}, which is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"{name} {text!r}: no permission to write in {str(ancestor)!r}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{name} {text!r} cannot be created: {exc.strerror or exc}") from None
    return out


# ---- coarse gradient descent ensembles ----


def _check_runs_shape(a, name, R, k, allow_shared):
    """a as (R, k): a (k,) vector is shared by every run when allow_shared."""
    if a.ndim == 1 and allow_shared and a.shape[0] == k:
        return a, 0
    if a.ndim != 2 or a.shape[1] != k or (R is not None and a.shape[0] != R):
        want = f"({R}, {k})" + (f" or ({k},)" if allow_shared else "")
        raise ValueError(f"{name} must have shape {want}, got shape {a.shape}")
    return a, 1


def check_ensemble_inputs(v0, w0, v_star, w_star, Z, y):
    """Validated C-contiguous arrays of one float dtype and the sizes (R, N, m, n)."""
    named = [("v0", v0), ("w0", w0), ("v_star", v_star), ("w_star", w_star)]
    if Z is not None:
        named.append(("Z", Z))
    if y is not None:
        named.append(("y", y))
    arrays = dict(zip([nm for nm, _ in named], as_float_arrays(*named)))
    v0, w0 = arrays["v0"], arrays["w0"]
    if v0.ndim != 2 or w0.ndim != 2 or v0.shape[0] != w0.shape[0]:
        raise ValueError(f"v0 and w0 must have shapes (R, m) and (R, n) with the same R; "
                         f"got {v0.shape} and {w0.shape}")
    R, m = v0.shape
    n = w0.shape[1]
    if m < 1 or n < 1:
        raise ValueError(f"v0 and w0 must have m >= 1 and n >= 1 columns; got {v0.shape}, {w0.shape}")
    v_star, sv = _check_runs_shape(arrays["v_star"], "v_star", R, m, True)
    w_star, sw = _check_runs_shape(arrays["w_star"], "w_star", R, n, True)
    if sv != sw:
        raise ValueError("v_star and w_star must both be shared (1-d) or both per run (2-d); "
                         f"got shapes {v_star.shape} and {w_star.shape}")
    for name in arrays:
        if not np.all(np.isfinite(arrays[name])):
            raise ValueError(f"{name} must be finite")
    check_nonzero_vectors(w_star, "w_star")
    N = 0
    if Z is not None:
        Z = arrays["Z"]
        if Z.ndim != 4 or Z.shape[0] != R or Z.shape[2:] != (m, n) or Z.shape[1] < 1:
            raise ValueError(f"Z must have shape (R, N, m, n) = ({R}, N, {m}, {n}) with N >= 1; "
                             f"got shape {Z.shape}")
        N = Z.shape[1]
    if y is not None:
        if Z is None:
            raise ValueError("y (labels) needs Z (the training set it labels)")
        y = arrays["y"]
        if y.shape != (R, N):
            raise ValueError(f"y must have shape (R, N) = ({R}, {N}), got shape {y.shape}")
    c = np.ascontiguousarray
    return (c(v0), c(w0), c(v_star), c(w_star), None if Z is None else c(Z),
            None if y is None else c(y), sv, (R, N, m, n))


# ---- sweeps ----


def check_sweep_grid(grid, fixed):
    """fixed as a dict (None: {}); grid a dict of non-empty lists of distinct
    JSON scalars (they name each point's file and seed), no name in both."""
    if not isinstance(grid, dict) or not grid:
        raise TypeError(f"grid must be a non-empty dict of parameter name -> list of values, "
                        f"got {type(grid).__name__} {grid!r:.60}")
    fixed = {} if fixed is None else fixed
    if not isinstance(fixed, dict):
        raise TypeError(f"fixed must be a dict of parameter name -> value, got "
                        f"{type(fixed).__name__}")
    scalars = (bool, int, float, str)
    for name, values in grid.items():
        if not isinstance(name, str):
            raise TypeError(f"grid keys must be parameter names (str), got {name!r}")
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
            raise ValueError(f"grid[{name!r}] must be a non-empty list of values, got {values!r:.60}")
        for x in values:
            if not isinstance(x, scalars):
                raise TypeError(f"grid[{name!r}] values must be int, float, str or bool (they "
                                f"name the point's file and seed), got {type(x).__name__} {x!r:.40}")
        if len(set(map(json.dumps, values))) != len(values):
            raise ValueError(f"grid[{name!r}] repeats a value: {list(values)!r:.80}")
    for name, x in fixed.items():
        if name in grid:
            raise ValueError(f"parameter {name!r} is both in grid and in fixed")
        if not isinstance(x, scalars) and x is not None:
            raise TypeError(f"fixed[{name!r}] must be int, float, str, bool or None, got "
                            f"{type(x).__name__}")
    return fixed
