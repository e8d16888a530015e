"""The C library installed with the package, used as another project would:
the layout and symbols of what is installed, ``python -m stefast.config``, and
the examples under examples/embed built against the installed package (with
pkg-config and with CMake) and run, their printed numbers checked bit for bit
against the Python API.

These tests need stefast installed from a wheel (``pip install .``), not
imported from this checkout (an editable install or an in-place build), and
a C and C++ compiler, pkg-config, cmake and nm. They skip without them;
CI sets STEFAST_REQUIRE_EMBED=1, which turns every such skip into a failure.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import stefast
from stefast.montecarlo import mc_key

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "embed"
REQUIRED = bool(os.environ.get("STEFAST_REQUIRE_EMBED"))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX tools expected")


def unavailable(reason):
    """Skip, or fail where CI requires these tests to run."""
    if REQUIRED:
        pytest.fail(f"{reason} (STEFAST_REQUIRE_EMBED is set)")
    pytest.skip(reason)


def tool(name):
    path = shutil.which(name) if name else None
    if path is None:
        unavailable(f"{name} not found")
    return path


@pytest.fixture(scope="module")
def package():
    """The directory of the installed stefast package (not this checkout's)."""
    here = Path(stefast.__file__).resolve().parent
    if here == (ROOT / "stefast").resolve():
        unavailable("stefast is imported from the source tree (editable or in-place build), "
                    "not installed from a wheel")
    try:
        stefast.get_include(), stefast.get_library_dir()
    except FileNotFoundError as e:
        unavailable(str(e))
    return here


def config(*options):
    """`python -m stefast.config OPTIONS` (warnings are errors) as text."""
    run = subprocess.run([sys.executable, "-W", "error", "-m", "stefast.config", *options],
                         capture_output=True, text=True, cwd="/")
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def compilers():
    """(C compiler, C++ compiler) of the family that built libstefast.a: its
    OpenMP runtime links with that family's -fopenmp only."""
    cc = Path(config("--cc")).name
    if "clang" in cc:
        cxx = cc.replace("clang", "clang++")
    elif "gcc" in cc:
        cxx = cc.replace("gcc", "g++")
    else:
        cxx = re.sub(r"cc$", "c++", cc)
    return tool(cc), tool(cxx)


def header_functions(text):
    """Names of the functions a C header declares (comments stripped)."""
    code = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return set(re.findall(r"\b(stefast_\w+)\s*\(", code))


def return_types(text, comment):
    """{function name: last word of its return type} of the stefast_*
    functions declared in text (comments starting with `comment` stripped)."""
    code = re.sub(comment, "", text, flags=re.S | re.M)
    return dict((name, kind) for kind, name in
                re.findall(r"(\w+)\s*\*?\s*\b(stefast_\w+)\s*\(", code))


def constants(text, comment):
    code = re.sub(comment, "", text, flags=re.S | re.M)
    return set(re.findall(r"\bSTEFAST_[A-Z0-9_]+\b", code)) - {"STEFAST_H"}


def global_symbols(path, *nm_options):
    """{name: nm type letter} of the global symbols path defines."""
    run = subprocess.run([tool("nm"), "--defined-only", *nm_options, str(path)],
                         capture_output=True, text=True, check=True)
    symbols = {}
    for line in run.stdout.splitlines():
        fields = line.split()
        if len(fields) == 3 and fields[1].isupper():
            symbols[fields[2]] = fields[1]
    return symbols


# ---- the Cython declarations: one mirror of the header -----------------------

C_COMMENT, PXD_COMMENT = r"/\*.*?\*/", r"#.*?$"


def test_cstefast_mirrors_the_header():
    """stefast/cstefast.pxd declares every function of stefast.h with its
    return type and every enum value and version macro, and nothing else in
    the package declares C."""
    header = ROOT / "src_c" / "stefast.h"
    if not header.is_file():
        pytest.skip("source tree not present")
    header, pxd = header.read_text(), (ROOT / "stefast" / "cstefast.pxd").read_text()
    assert return_types(pxd, PXD_COMMENT) == return_types(header, C_COMMENT)
    assert set(return_types(header, C_COMMENT)) == header_functions(header)
    assert constants(pxd, PXD_COMMENT) == constants(header, C_COMMENT)
    assert 'cdef extern from "stefast/stefast.h" nogil:' in pxd
    declaring = [path.name for path in (ROOT / "stefast").glob("*.p[xy][dx]")
                 if "cdef extern" in path.read_text()]
    assert declaring == ["cstefast.pxd"]


# ---- what is installed -------------------------------------------------------

def test_installed_files(package):
    include, lib = Path(stefast.get_include()), Path(stefast.get_library_dir())
    assert include == package / "include" and lib == package / "lib"
    header = include / "stefast" / "stefast.h"
    # the one public header; src_c/stefast.h is its only copy in the sources
    if (ROOT / "src_c" / "stefast.h").is_file():
        assert header.read_bytes() == (ROOT / "src_c" / "stefast.h").read_bytes()
    assert re.findall(r"#include\s*[<\"](.*?)[>\"]", header.read_text()) == ["stdint.h"]
    for path in (lib / "libstefast.a", lib / "pkgconfig" / "stefast.pc",
                 lib / "cmake" / "stefast" / "stefast-config.cmake",
                 lib / "cmake" / "stefast" / "stefast-config-version.cmake",
                 package / "cstefast.pxd"):
        assert path.is_file(), path


def test_library_exports_exactly_the_header_functions(package):
    """libstefast.a leaves global only the functions stefast.h declares (its
    internals are local), and the extension module exports those same
    functions: it links this library rather than its own copy of the kernels."""
    declared = header_functions((package / "include" / "stefast" / "stefast.h").read_text())
    assert len(declared) > 30
    library = global_symbols(package / "lib" / "libstefast.a")
    assert set(library) == declared
    assert set(library.values()) == {"T"}
    core = next(package.glob("_core.*.so"))
    exported = global_symbols(core, "--dynamic")
    assert {name for name in exported if name.startswith("stefast")} == declared


def test_config_prints_what_pkg_config_does(package):
    pkgconfig = tool("pkg-config")
    env = dict(os.environ, PKG_CONFIG_PATH=config("--pkgconfigdir"))
    flags = subprocess.run([pkgconfig, "--cflags", "--libs", "stefast"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    ours = config("--cflags", "--libs").split()

    def resolved(flag_list):
        return [f[:2] + os.path.realpath(f[2:]) if f[:2] in ("-I", "-L") else f
                for f in flag_list]

    assert resolved(flags) == resolved(ours)
    assert f"-I{stefast.get_include()}" in ours and "-lstefast" in ours
    assert (Path(config("--cmakedir")) / "stefast-config.cmake").is_file()
    version = subprocess.run([pkgconfig, "--modversion", "stefast"], env=env,
                             capture_output=True, text=True, check=True).stdout.strip()
    assert version == stefast.__version__


# ---- the examples, built against the installed package ----------------------

M, N, B, LEARNING_RATE, STEPS = 4, 6, 32, 0.25, 12
SEED = 20190501


def python_simulation(seed, steps):
    """What examples/embed/c/simulate.c computes, through the Python API."""
    Z = stefast.standard_normals((B, M * N), rng=seed, stream=0).reshape(B, M, N)
    weights = stefast.standard_normals((1, 2 * M + 2 * N), rng=seed, stream=B)[0]
    v_star, w_star = weights[:M], weights[M:M + N]
    v, w = weights[M + N:2 * M + N].copy(), weights[2 * M + N:].copy()
    losses = []
    for _ in range(steps):
        out = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste="relu", reduce="sum")
        losses.append(float(out.loss) / B)
        v = v - LEARNING_RATE * (out.grad_v / B)
        w = w - LEARNING_RATE * (out.grad_w / B)
    return {"stefast": stefast.__version__, "weights": weights, "Z0": Z[0].reshape(-1),
            "loss": np.array(losses), "v": v, "w": w}


def parse_simulation(text):
    got = {"loss": []}
    for line in text.splitlines():
        name, *values = line.split()
        if name == "stefast":
            got[name] = values[0]
        elif name == "step":
            assert int(values[0]) == len(got["loss"]) and values[1] == "loss"
            got["loss"].append(float(values[2]))
        else:
            got[name] = np.array([float(x) for x in values])
    got["loss"] = np.array(got["loss"])
    return got


def check_simulation(stdout):
    got, want = parse_simulation(stdout), python_simulation(SEED, STEPS)
    assert got.keys() == want.keys()
    assert got.pop("stefast") == want.pop("stefast")
    for name, values in want.items():
        # bit for bit: %.17g round-trips every double
        assert got[name].shape == values.shape, name
        assert np.array_equal(got[name].view(np.uint64), values.view(np.uint64)), (
            f"{name}: program {got[name]} != Python {values}")
    assert want["loss"][-1] < want["loss"][0]  # the descent does descend


def run_simulation(exe):
    key = [str(int(word)) for word in mc_key(SEED)]
    run = subprocess.run([str(exe), *key, str(STEPS)], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    return run.stdout


SOURCES = {"c": EXAMPLES / "c" / "simulate.c", "cpp": EXAMPLES / "cpp" / "simulate.cpp"}
TARGETS = {"c": "simulate", "cpp": "simulate_cpp"}


def build_with_pkgconfig(language, out, pkgconfig_dir):
    cc, cxx = compilers()
    env = dict(os.environ, PKG_CONFIG_PATH=str(pkgconfig_dir))
    flags = subprocess.run([tool("pkg-config"), "--cflags", "--libs", "stefast"], env=env,
                           capture_output=True, text=True, check=True).stdout.split()
    # the header must compile cleanly under the strictest warnings of each language
    compiler, std = (cc, "-std=c99") if language == "c" else (cxx, "-std=c++17")
    exe = out / TARGETS[language]
    build = subprocess.run([compiler, std, "-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                            str(SOURCES[language]), *flags, "-o", str(exe)],
                           capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return exe


def build_with_cmake(language, out, cmake_dir):
    cc, cxx = compilers()
    cmake = tool("cmake")
    configure = subprocess.run(
        [cmake, "-S", str(EXAMPLES / language), "-B", str(out), f"-Dstefast_DIR={cmake_dir}",
         f"-DCMAKE_C_COMPILER={cc}", f"-DCMAKE_CXX_COMPILER={cxx}", "-DCMAKE_BUILD_TYPE=Release"],
        capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = subprocess.run([cmake, "--build", str(out)], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    return out / TARGETS[language]


@pytest.mark.parametrize("language", ["c", "cpp"])
def test_example_with_pkgconfig_matches_python(package, language, tmp_path):
    exe = build_with_pkgconfig(language, tmp_path, config("--pkgconfigdir"))
    check_simulation(run_simulation(exe))


@pytest.mark.parametrize("language", ["c", "cpp"])
def test_example_with_cmake_matches_python(package, language, tmp_path):
    exe = build_with_cmake(language, tmp_path / "build", config("--cmakedir"))
    check_simulation(run_simulation(exe))


def test_cython_example_matches_python(package, tmp_path):
    """examples/embed/cython cimports the installed stefast/cstefast.pxd, runs
    the kernels under `with nogil:` and prints what the C simulator prints."""
    try:
        import Cython  # noqa: F401
        import setuptools  # noqa: F401
    except ImportError:
        unavailable("building the Cython example needs Cython and setuptools")
    cc, _ = compilers()
    shutil.copytree(EXAMPLES / "cython", tmp_path / "cython")
    here = tmp_path / "cython"
    env = dict(os.environ, CC=cc)
    build = subprocess.run([sys.executable, "setup.py", "build_ext", "--inplace"], cwd=here,
                           env=env, capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    key = [str(int(word)) for word in mc_key(SEED)]
    run = subprocess.run([sys.executable, "-c", "import simulate_cy; simulate_cy.main()",
                          *key, str(STEPS)], cwd=here, capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    check_simulation(run.stdout)


def test_package_configs_are_relocatable(package, tmp_path):
    """stefast.pc and the CMake package find the library relative to
    themselves: a copy of the installed files elsewhere still builds."""
    copy = tmp_path / "moved"
    for part in ("include", "lib"):
        shutil.copytree(package / part, copy / part)
    exe = build_with_pkgconfig("c", tmp_path, copy / "lib" / "pkgconfig")
    check_simulation(run_simulation(exe))
    exe = build_with_cmake("c", tmp_path / "build", copy / "lib" / "cmake" / "stefast")
    check_simulation(run_simulation(exe))
