"""Core kernels: loss_and_grads against the NumPy reference and a PyTorch
autograd STE, with Z streamed from memory (>= 64 MB), plus the machine's
one-pass read bandwidth measured in the same run (the fastest of a C loop
with aligned 64-byte loads and two NumPy reductions), and the default
(dispatching) build against a -march=native build of the same C kernel.

Run: pytest bench/test_bench_core.py   (add --benchmark-disable for a smoke run)
"""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

import stefast
from stefast import reference as ref
from _peers import torch_binarize_ste
from conftest import BOUNDS, NOTES, QUICK

ROOT = Path(__file__).resolve().parents[1]
SHAPES = [(8, 16), (32, 64), (128, 512)]
DTYPES = [np.float64, np.float32]
Z_BYTES = 64_000_000
_PROBLEMS = {}


def problem(m, n, dtype):
    """Cached, seeded inputs with Z of at least Z_BYTES."""
    key = (m, n, np.dtype(dtype).name)
    if key not in _PROBLEMS:
        rng = np.random.default_rng(0)
        B = -(-Z_BYTES // (m * n * np.dtype(dtype).itemsize))
        Z = rng.standard_normal((B, m, n), dtype=np.float64).astype(dtype)
        vecs = [rng.standard_normal(k).astype(dtype) for k in (m, n, m, n)]
        _PROBLEMS.clear()  # keep one problem in memory at a time
        _PROBLEMS[key] = (Z, *vecs)
    return _PROBLEMS[key]


READS = ["C, aligned 64-byte loads", "numpy maximum.reduce", "numpy add.reduce"]


def one_pass_reads(flat, c_read):
    """{name: callable} reading flat once, for every read this machine has."""
    fns = {"numpy maximum.reduce": lambda: np.maximum.reduce(flat),
           "numpy add.reduce": lambda: np.add.reduce(flat)}
    if c_read is not None:
        fns = {"C, aligned 64-byte loads": lambda: c_read(flat), **fns}
    return fns


@pytest.mark.parametrize("method", READS)
def test_read_bandwidth(benchmark, c_read, method):
    """One-pass streaming read of 64 MB of float64, one thread, three ways:
    the bound for any kernel that must read Z once is the fastest of them."""
    x = np.ones(Z_BYTES // 8)
    fns = one_pass_reads(x, c_read)
    if method not in fns:
        pytest.skip("no C compiler")
    benchmark.group = "bound: one-pass read"
    benchmark.pedantic(fns[method], rounds=7, iterations=1, warmup_rounds=1)
    if not benchmark.disabled:
        per_value = benchmark.stats.stats.min / x.size
        NOTES.append(f"one-pass read, {method}: {per_value * 1e9:.3f} ns per float64")
        if per_value < BOUNDS.get("read ns/float64", np.inf):
            BOUNDS["read ns/float64"] = per_value
            BOUNDS["read ns/float32"] = per_value / 2  # same bytes


def on_cache_line(a):
    """A copy of a that starts on a 64-byte boundary (NumPy's own large
    buffers start 16 bytes past one)."""
    buf = np.empty(a.nbytes + 64, dtype=np.uint8)
    start = -buf.ctypes.data % 64
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


def copy_placed(a, placement):
    """A fresh copy of a where NumPy places a buffer, or on a cache line."""
    if placement == "line-aligned":
        return on_cache_line(a)
    out = np.empty_like(a)
    np.copyto(out, a)
    return out


FRACTION_COPIES = 5  # allocations of Z per case: the read's rate depends on where Z lands


@pytest.mark.quick
@pytest.mark.parametrize("placement", ["numpy", "line-aligned"])
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_fraction_of_read_bandwidth(benchmark, interleave, c_read, shape, dtype, placement):
    """loss_and_grads against one-pass reads of the very same Z, in
    alternating rounds: the same buffer and pages, and machine drift hits
    all of them. Z as NumPy allocated it (16 bytes past a cache line) and
    on a line; the kernel takes aligned loads in both (same results to the
    bit). Each case times several fresh copies of Z in turn, since the
    read's rate depends on the pages Z gets, far more than the kernel's
    (docs/performance.rst, section "Bandwidth, drift and call overhead"):
    the fraction is (the read's
    median) / (the kernel's median) per copy, reported as the median over
    the copies and their range."""
    m, n = shape
    Z0, v, w, v_star, w_star = problem(m, n, dtype)
    count = 1 if benchmark.disabled else (2 if QUICK else FRACTION_COPIES)
    copies = [Z0] if placement == "numpy" else []
    copies += [copy_placed(Z0, placement) for _ in range(count - len(copies))]
    offsets = sorted({Z.ctypes.data % 64 for Z in copies})

    def timed(Z):
        return {**one_pass_reads(Z.reshape(-1), c_read),
                "stefast": lambda: stefast.loss_and_grads(Z, v, w, v_star, w_star,
                                                          reduce="sum", threads=1)}

    benchmark.group = (f"interleaved: loss_and_grads {m}x{n} {np.dtype(dtype).name} "
                       f"vs one-pass read, Z {placement}")
    summary = interleave([timed(Z) for Z in copies], work=Z0.shape[0],
                         rounds=9, study="fraction of read bandwidth",
                         placement=placement, offsets=offsets)
    if benchmark.disabled:
        return
    fast = summary.pop("stefast")
    floor, read = min(summary.items(), key=lambda kv: kv[1]["median"])
    fractions = [c[floor]["median"] / c["stefast"]["median"]
                 for c in benchmark.extra_info["copies"]]
    benchmark.extra_info["fraction_of_read"] = dict(
        read=floor, median=float(np.median(fractions)), per_copy=fractions)
    NOTES.append(f"loss_and_grads {m}x{n} {np.dtype(dtype).name}, Z {placement} "
                 f"(starts {'/'.join(map(str, offsets))} B past a line): "
                 f"{np.median(fractions):.0%} of a one-pass read of the same Z "
                 f"(median over {len(fractions)} copies of Z, {min(fractions):.0%}-"
                 f"{max(fractions):.0%}; {floor}; {read['best'] / fast['best']:.0%} "
                 f"best against best)")


def torch_loss_and_grads():
    torch = pytest.importorskip("torch")

    BinarizeSTE = torch_binarize_ste()

    torch.set_num_threads(1)

    def run(Z, v, w, v_star, w_star):
        Zt = torch.from_numpy(Z)
        vt = torch.from_numpy(v).requires_grad_()
        wt = torch.from_numpy(w).requires_grad_()
        with torch.no_grad():
            y_star = (Zt @ torch.from_numpy(w_star) > 0).to(Zt.dtype) @ torch.from_numpy(v_star)
        r = BinarizeSTE.apply(Zt @ wt) @ vt - y_star
        loss = 0.5 * (r * r).sum()
        loss.backward()
        return loss.item(), vt.grad.numpy(), wt.grad.numpy()

    return run


IMPLS = ["stefast", "reference", "torch-autograd"]


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("impl", IMPLS)
def test_loss_and_grads(benchmark, report, impl, shape, dtype):
    m, n = shape
    Z, v, w, v_star, w_star = problem(m, n, dtype)
    if impl == "stefast":
        fn = lambda: stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce="sum", threads=1)
    elif impl == "reference":
        fn = lambda: ref.loss_and_grads(Z, v, w, v_star, w_star, reduce="sum")
    else:
        run = torch_loss_and_grads()
        fn = lambda: run(Z, v, w, v_star, w_star)
        # a wrong fast peer is not a peer: check once against stefast
        loss, gv, gw = fn()
        fast = stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce="sum", threads=1)
        tol = 1e-3 if dtype == np.float32 else 1e-9
        np.testing.assert_allclose(loss, fast.loss, rtol=tol)
        np.testing.assert_allclose(gw, fast.grad_w, rtol=tol, atol=tol * np.abs(fast.grad_w).max())
    benchmark.group = f"loss_and_grads {m}x{n} {np.dtype(dtype).name} 1 thread"
    benchmark.pedantic(fn, rounds=5, iterations=1, warmup_rounds=1)
    report(impl, work=Z.shape[0], unit="samples",
           bound=f"read ns/{np.dtype(dtype).name}", bound_units=Z.size)


@pytest.fixture(scope="module")
def c_timing_builds(tmp_path_factory):
    """bench/c_timing.c built from the same kernel sources with the default
    flags of setup.py (runtime dispatch) by the default compiler ("default")
    and by clang when it is installed ("clang"), and with -march=native
    without dispatch ("native")."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    cc = shutil.which(cc) or shutil.which("cc")
    if cc is None or not (ROOT / "src_c").is_dir():
        pytest.skip("needs a C compiler and the source tree")
    out = tmp_path_factory.mktemp("c_timing")
    kernels = [str(p) for p in sorted((ROOT / "src_c").glob("*.c"))]
    variants = [("default", cc, []), ("native", cc, ["-march=native", "-DSTEFAST_NO_DISPATCH"])]
    if shutil.which("clang"):
        variants.append(("clang", shutil.which("clang"), []))
    builds = {}
    for name, compiler, extra in variants:
        exe = out / f"c_timing_{name}"
        made = subprocess.run([compiler, "-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp",
                               "-Wno-psabi", *extra, f"-I{ROOT / 'src_c'}",
                               str(ROOT / "bench" / "c_timing.c"), *kernels, "-o", str(exe), "-lm"],
                              capture_output=True)
        if made.returncode == 0 or name != "clang":  # clang without libomp: no clang build
            made.check_returncode()
            builds[name] = exe
    return builds


def _time_builds(builds, kernel, shape, dtype, megabytes, rounds):
    """Best ns per element of each build of c_timing over `rounds`
    interleaved rounds in alternating order (machines drift)."""
    times = {name: [] for name in builds}
    order = list(builds.items())
    for r in range(rounds):
        for name, exe in order if r % 2 == 0 else order[::-1]:
            out = subprocess.run([str(exe), kernel, str(shape[0]), str(shape[1]), megabytes,
                                  dtype, "3"], check=True, capture_output=True, text=True)
            times[name].append(float(out.stdout))
    return {name: float(np.min(t)) for name, t in times.items()}  # same code, best of the rounds


@pytest.mark.parametrize("dtype", ["d", "f"], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_dispatch_vs_native_build(benchmark, c_timing_builds, shape, dtype):
    """The default build (runtime dispatch, runs on any x86-64) against
    -march=native, same kernel source, same run, interleaved rounds."""
    builds = {k: c_timing_builds[k] for k in ("default", "native")}
    ns = _time_builds(builds, "loss", shape, dtype, "4" if benchmark.disabled else "64",
                      1 if benchmark.disabled else 9)
    benchmark.group = "build: dispatch vs -march=native (ns per Z element)"
    benchmark.extra_info.update(default_ns_per_element=ns["default"],
                                native_ns_per_element=ns["native"],
                                default_over_native=ns["default"] / ns["native"])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    if not benchmark.disabled:
        NOTES.append(f"loss_and_grads {shape[0]}x{shape[1]} {'float64' if dtype == 'd' else 'float32'}"
                     f" (C, 1 thread): dispatch build {ns['default']:.3f} ns/element, "
                     f"-march=native {ns['native']:.3f} ns/element, "
                     f"ratio {ns['default'] / ns['native']:.3f}")


@pytest.mark.parametrize("dtype", ["d", "f"], ids=["float64", "float32"])
@pytest.mark.parametrize("shape", [(8, 16), (32, 64)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("kernel", ["loss", "normals", "mc"])
def test_gcc_vs_clang_build(benchmark, c_timing_builds, kernel, shape, dtype):
    """The same kernel source built by the default compiler (GCC) and by
    clang, both with runtime dispatch, timed in one run, interleaved:
    loss_and_grads' batch sums, the Gaussian generator and full Monte Carlo."""
    if "clang" not in c_timing_builds:
        pytest.skip("clang (with OpenMP) not installed")
    if kernel == "normals" and shape != (32, 64):
        pytest.skip("the generator's cost does not depend on the shape")
    builds = {k: c_timing_builds[k] for k in ("default", "clang")}
    ns = _time_builds(builds, kernel, shape, dtype, "2" if benchmark.disabled else "32",
                      1 if benchmark.disabled else 7)
    benchmark.group = "build: GCC vs Clang (ns per Z element or normal)"
    benchmark.extra_info.update(gcc_ns_per_element=ns["default"], clang_ns_per_element=ns["clang"],
                                clang_over_gcc=ns["clang"] / ns["default"])
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    if not benchmark.disabled:
        what = {"loss": f"loss_and_grads {shape[0]}x{shape[1]}", "normals": "normals",
                "mc": f"monte_carlo full {shape[0]}x{shape[1]}"}[kernel]
        NOTES.append(f"{what} {'float64' if dtype == 'd' else 'float32'} (C, 1 thread): "
                     f"GCC {ns['default']:.3f} ns, Clang {ns['clang']:.3f} ns, "
                     f"Clang/GCC {ns['clang'] / ns['default']:.3f}")


@pytest.mark.parametrize("kernel", ["loss", "mc"])
def test_python_api_vs_c(benchmark, c_timing_builds, kernel):
    """bench/api_timing.py (the installed stefast through its Python API, a
    fresh interpreter per round) against c_timing (the same kernel from C,
    built here by the default compiler), 8x16 float32, interleaved: what
    the API adds to a long call. api_timing.py also compares two installed
    builds (docs/portability.md, "Speed: Clang against GCC")."""
    script = ROOT / "bench" / "api_timing.py"
    megabytes = "2" if benchmark.disabled else "64"
    api, c = [], []
    for _ in range(1 if benchmark.disabled else 3):
        out = subprocess.run([sys.executable, str(script), kernel, "8", "16", "f", megabytes],
                             check=True, capture_output=True, text=True)
        api.append(float(out.stdout))
        out = subprocess.run([str(c_timing_builds["default"]), kernel, "8", "16", megabytes,
                              "f", "3"], check=True, capture_output=True, text=True)
        c.append(float(out.stdout))
    assert min(api) > 0 and min(c) > 0
    benchmark.group = "Python API vs C (ns per Z element or sample element)"
    benchmark.extra_info.update(api_ns=min(api), c_ns=min(c), api_over_c=min(api) / min(c))
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    if not benchmark.disabled:
        NOTES.append(f"{kernel} 8x16 float32, 1 thread: Python API {min(api):.3f} ns, "
                     f"C {min(c):.3f} ns, API/C {min(api) / min(c):.3f}")
