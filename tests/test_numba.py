"""stefast's C functions called from @numba.njit code through stefast.jit:
the table of addresses and signatures, the kernels and the generator giving
the Python API's bits, the example simulator (examples/embed/numba), and the
errors of a wrong call.

The tests of the table itself need no Numba; the rest skip without it
(`pip install numba`; CI installs the bench extra, which has it).
"""

import ctypes
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stefast
import stefast.jit
from stefast import _core
from stefast.montecarlo import mc_key

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "embed" / "numba" / "simulate_numba.py"
OK = stefast.jit.STATUS_CODES["STEFAST_OK"]
EINVAL = stefast.jit.STATUS_CODES["STEFAST_EINVAL"]


@pytest.fixture(scope="module")
def numba():
    return pytest.importorskip("numba")


def header_declarations():
    """{name: ((return type, pointer depth), [(const, base type, pointer
    depth, parameter name)])} of the functions the installed stefast.h
    declares; an array parameter (`uint64_t key[2]`) counts as a pointer, as
    in C."""
    header = Path(stefast.get_include()) / "stefast" / "stefast.h"
    code = " ".join(re.sub(r"/\*.*?\*/", " ", header.read_text(), flags=re.S).split())
    table = {}
    for ret, stars, name, params in re.findall(
            r"(\w+)\s*(\**)\s*\b(stefast_\w+)\s*\(([^()]*)\)\s*;", code):
        parsed = []
        for param in params.split(","):
            param = param.strip()
            if param in ("", "void"):
                continue
            arrays = param.count("[")
            param = re.sub(r"\[\d*\]", "", param)
            match = re.fullmatch(r"(const\s+)?(\w+)\s*(\**)\s*(\w+)", param)
            assert match, f"{name}: unexpected parameter {param!r}"
            parsed.append((bool(match[1]), match[2], len(match[3]) + arrays, match[4]))
        table[name] = ((ret, len(stars)), parsed)
    return table


def header_parameters():
    return {name: params for name, (_, params) in header_declarations().items()}


# ---- the table (no Numba needed) ------------------------------------------

def test_every_header_function_has_an_address_and_a_signature():
    declared = set(header_parameters())
    assert len(declared) > 30
    assert set(stefast.jit.function_names()) == declared
    # the names _core lists by hand must follow the header
    assert set(_core.C_FUNCTION_ADDRESSES) == declared
    assert len(set(_core.C_FUNCTION_ADDRESSES.values())) == len(declared)


# sizes of the header's scalar types; every enum is passed as an int
SCALAR_SIZES = {"double": 8, "float": 4, "int64_t": 8, "uint64_t": 8, "int": 4}


def test_signatures_follow_the_header():
    """Each ctypes signature, read from cstefast.pxd, has the header's
    result type and arity, a pointer where the header has one and a scalar of
    the header's size elsewhere, so a drift between the two mirrors shows here."""
    enums = {"stefast_status", "stefast_ste", "stefast_rounding", "stefast_alpha_grad",
             "stefast_mc_method", "stefast_surrogate_kind"}
    results = {("stefast_status", 0): ctypes.c_int, ("int", 0): ctypes.c_int,
               ("int64_t", 0): ctypes.c_int64, ("void", 0): None, ("char", 1): ctypes.c_char_p}
    for name, (ret, params) in header_declarations().items():
        fn = stefast.jit.c_function(name)
        assert fn.restype is results[ret], name
        assert len(fn.argtypes) == len(params), name
        for argtype, (_, base, depth, pname) in zip(fn.argtypes, params):
            where = f"{name}({pname})"
            if depth:
                assert depth == 1, where
                assert issubclass(argtype, ctypes._Pointer) or argtype is ctypes.c_void_p, where
                if base in SCALAR_SIZES:
                    assert ctypes.sizeof(argtype._type_) == SCALAR_SIZES[base], where
            else:
                size = 4 if base in enums else SCALAR_SIZES[base]
                assert not issubclass(argtype, ctypes._Pointer), where
                assert ctypes.sizeof(argtype) == size, where


def test_calls_from_python_reach_the_linked_library():
    """The pointers are the functions stefast._core runs: same answers, and
    (where the extension exports its symbols, as on ELF) the same addresses."""
    version = stefast.jit.c_function("stefast_version")
    assert version().decode() == stefast.__version__
    strerror = stefast.jit.c_function("stefast_strerror")
    assert strerror(EINVAL) != strerror(OK)

    threefry = stefast.jit.c_function("stefast_threefry2x64_20")
    ctr, key, out = ((ctypes.c_uint64 * 2)(*w) for w in ((3, 4), (5, 6), (0, 0)))
    threefry(ctr, key, out)
    assert tuple(out) == _core.threefry2x64_20(3, 4, 5, 6)

    x = np.array([-1.5, 0.0, -0.0, 2.0, np.inf, -np.inf, np.nan])
    out = np.full_like(x, 7.0)
    pointer = ctypes.POINTER(ctypes.c_double)
    status = stefast.jit.c_function("stefast_binarize_d")(
        x.ctypes.data_as(pointer), out.ctypes.data_as(pointer), x.size)
    assert status == OK
    assert np.array_equal(out, stefast.binarize(x))

    exported = ctypes.CDLL(_core.__file__)
    for name, address in _core.C_FUNCTION_ADDRESSES.items():
        if hasattr(exported, name):
            assert ctypes.cast(getattr(exported, name), ctypes.c_void_p).value == address, name


def test_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match=r"no C function 'stefast_binarise_d'.*"
                                         r"did you mean stefast_binarize_d"):
        stefast.jit.c_function("stefast_binarise_d")
    # a constant of the header is not a function
    with pytest.raises(ValueError, match="no C function 'STEFAST_OK'"):
        stefast.jit.c_address("STEFAST_OK")


# ---- from @njit code ----------------------------------------------------------

def bits_equal(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@pytest.fixture(scope="module")
def elementwise(numba):
    """{suffix: (binarize, sign, ste_grad)} as @njit functions of arrays."""
    made = {}
    for suffix in ("d", "f"):
        binarize_c = stefast.jit.c_function(f"stefast_binarize_{suffix}")
        sign_c = stefast.jit.c_function(f"stefast_sign_{suffix}")
        ste_grad_c = stefast.jit.c_function(f"stefast_ste_grad_{suffix}")

        def make(binarize_c, sign_c, ste_grad_c):
            @numba.njit
            def binarize(x):
                out = np.empty_like(x)
                return binarize_c(x.ctypes, out.ctypes, x.size), out

            @numba.njit
            def sign(x):
                out = np.empty_like(x)
                return sign_c(x.ctypes, out.ctypes, x.size), out

            @numba.njit
            def ste_grad(x, g, code):
                out = np.empty_like(x)
                return ste_grad_c(x.ctypes, g.ctypes, out.ctypes, x.size, code), out

            return binarize, sign, ste_grad

        made[suffix] = make(binarize_c, sign_c, ste_grad_c)
    return made


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_njit_elementwise_matches_python(elementwise, dtype):
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.standard_normal(29) * 2, [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf,
                                                      np.nan]]).astype(dtype)
    g = rng.standard_normal(x.size).astype(dtype)
    binarize, sign, ste_grad = elementwise["d" if dtype == np.float64 else "f"]
    status, out = binarize(x)
    assert status == OK and bits_equal(out, stefast.binarize(x))
    status, out = sign(x)
    assert status == OK and bits_equal(out, stefast.sign(x))
    for ste, code in stefast.jit.STE_CODES.items():
        status, out = ste_grad(x, g, code)
        assert status == OK and bits_equal(out, stefast.ste_grad(x, g, ste=ste)), ste


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_njit_loss_and_grads_matches_python(numba, dtype):
    suffix = "d" if dtype == np.float64 else "f"
    kernel = stefast.jit.c_function(f"stefast_loss_and_grads_{suffix}")

    @numba.njit
    def loss_and_grads(Z, v, w, v_star, w_star, code, threads):
        B, m, n = Z.shape
        loss, grad_v, grad_w = np.empty(B, Z.dtype), np.empty((B, m), Z.dtype), np.empty(
            (B, n), Z.dtype)
        status = kernel(Z.ctypes, v.ctypes, w.ctypes, v_star.ctypes, w_star.ctypes, B, m, n,
                        code, loss.ctypes, grad_v.ctypes, grad_w.ctypes, threads)
        return status, loss, grad_v, grad_w

    rng = np.random.default_rng(2)
    B, m, n = 9, 4, 5
    Z = rng.standard_normal((B, m, n)).astype(dtype)
    v, w, v_star, w_star = (rng.standard_normal(k).astype(dtype) for k in (m, n, m, n))
    for ste, code in stefast.jit.STE_CODES.items():
        want = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
        assert np.any(want.loss > 0)  # the model does not fit the teacher by accident
        for threads in (1, 2):
            status, loss, grad_v, grad_w = loss_and_grads(Z, v, w, v_star, w_star, code,
                                                          threads)
            assert status == OK
            assert bits_equal(loss, want.loss), (ste, threads)
            assert bits_equal(grad_v, want.grad_v), (ste, threads)
            assert bits_equal(grad_w, want.grad_w), (ste, threads)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_njit_normals_match_standard_normals(numba, dtype):
    suffix = "d" if dtype == np.float64 else "f"
    normals = stefast.jit.c_function(f"stefast_normals_{suffix}")

    @numba.njit
    def draw(key, first_stream, nstreams, length, out):
        return normals(key.ctypes, first_stream, nstreams, length, out.ctypes, 2)

    seed, first, shape = 11, 5, (3, 37)
    out = np.empty(shape, dtype)
    assert draw(mc_key(seed), first, shape[0], shape[1], out) == OK
    assert bits_equal(out, stefast.standard_normals(shape, rng=seed, stream=first, dtype=dtype))


def load_example():
    spec = importlib.util.spec_from_file_location("simulate_numba", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_descent_matches_python(numba):
    """examples/embed/numba: one @njit function draws the data and runs
    coarse gradient descent through the C generator and kernel, with the
    Python API's bits (the same check as the C, C++ and Cython simulators)."""
    from test_embed import SEED, STEPS, check_simulation, python_simulation

    example = load_example()
    want = python_simulation(SEED, STEPS)
    for threads in (1, 2):
        status, weights, Z0, losses, v, w = example.simulate(mc_key(SEED), STEPS, threads)
        assert status == OK
        for name, got in (("weights", weights), ("Z0", Z0), ("loss", losses), ("v", v),
                          ("w", w)):
            assert bits_equal(got, want[name]), (name, threads)

    key = [str(int(word)) for word in mc_key(SEED)]
    run = subprocess.run([sys.executable, str(EXAMPLE), *key, str(STEPS)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    check_simulation(run.stdout)


def test_wrong_dtype_is_a_typing_error(numba):
    """A float32 array where the C function takes double * does not compile:
    the pointer types of the signature reach Numba's type checker."""
    binarize_d = stefast.jit.c_function("stefast_binarize_d")

    @numba.njit
    def call(x, out):
        return binarize_d(x.ctypes, out.ctypes, x.size)

    x = np.ones(4, np.float32)
    with pytest.raises(numba.core.errors.TypingError, match=r"float64\*"):
        call(x, np.empty_like(x))


def test_bad_arguments_return_the_status(numba):
    """From compiled code, the C functions' own argument checks are what is
    left: they return STEFAST_EINVAL, which the caller must look at."""
    kernel = stefast.jit.c_function("stefast_loss_and_grads_sum_d")
    binarize_d = stefast.jit.c_function("stefast_binarize_d")

    @numba.njit
    def loss_sum(code, B):
        Z, v, w = np.ones((1, 2, 3)), np.ones(2), np.ones(3)
        sums = np.zeros(1 + 2 + 3)
        return kernel(Z.ctypes, v.ctypes, w.ctypes, v.ctypes, w.ctypes, B, 2, 3, code,
                      sums[:1].ctypes, sums[1:3].ctypes, sums[3:].ctypes, 1)

    @numba.njit
    def binarize(length):
        x = np.ones(2)
        return binarize_d(x.ctypes, x.ctypes, length)

    assert loss_sum(stefast.jit.STE_CODES["relu"], 1) == OK
    unknown_ste = max(stefast.jit.STE_CODES.values()) + 1
    assert loss_sum(unknown_ste, 1) == EINVAL
    assert loss_sum(stefast.jit.STE_CODES["relu"], -1) == EINVAL
    assert binarize(-1) == EINVAL
    strerror = stefast.jit.c_function("stefast_strerror")
    assert strerror(EINVAL).decode() != strerror(OK).decode()
