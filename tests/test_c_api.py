"""The C core as a C program sees it, on every build this machine can make.

tests/c_api_test.c uses src_c/stefast.h from plain C (no Python headers);
tests/c_rounding_test.c prints the results whose bits must not depend on the
build. Each is compiled with the kernel sources for every *build* found here:
the default C compiler and clang with runtime dispatch, the default compiler
for baseline x86-64 without OpenMP and for AVX2 only, and aarch64 with the
cross compiler, run under qemu-user. A build whose tools are missing is
skipped.
"""

import hashlib
import importlib.metadata
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src_c"
AARCH64_SYSROOT = Path("/usr/aarch64-linux-gnu")

# SHA-256 of c_rounding_test's output: the same on every build above
# (gcc 12 and clang 14 on x86-64 with each dispatch clone, gcc 12 on aarch64).
# A change to the kernels that changes a rounding must change this on purpose.
ROUNDING_SHA256 = "ccfac38df01eeb1193292c051b1e00bb69b95d2707ff154d8ea23338a1d6e77f"

# the floating-point flags setup.py builds with, plus the strictest warnings
CFLAGS = ["-std=c99", "-O3", "-ffp-contract=off", "-fno-math-errno",
          "-Wall", "-Werror", "-Wno-psabi"]

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX compiler driver expected")


def default_compiler():
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc) or shutil.which("cc") or shutil.which("gcc")


def _x86_64():
    return platform.machine() in ("x86_64", "AMD64")


def _cpu_has(flag):
    cpuinfo = Path("/proc/cpuinfo")
    return cpuinfo.exists() and flag in cpuinfo.read_text().split()


# name: (compiler, extra flags, OpenMP, runner prefix or None, why it may be missing)
def _builds():
    cc = default_compiler()
    qemu = shutil.which("qemu-aarch64")
    return {
        "default": (cc, [], True, [], None if cc else "no C compiler"),
        "clang": (shutil.which("clang"), [], True, [],
                  None if shutil.which("clang") else "clang not installed"),
        "baseline-no-openmp": (cc, ["-march=x86-64", "-DSTEFAST_NO_DISPATCH"], False, [],
                               None if _x86_64() else "x86-64 only"),
        "avx2": (cc, ["-mavx2", "-DSTEFAST_NO_DISPATCH"], True, [],
                 None if _x86_64() and _cpu_has("avx2") else "needs an x86-64 with AVX2"),
        "aarch64": (shutil.which("aarch64-linux-gnu-gcc"), [], True,
                    [qemu, "-L", str(AARCH64_SYSROOT)] if qemu else None,
                    None if shutil.which("aarch64-linux-gnu-gcc") and qemu
                    else "needs aarch64-linux-gnu-gcc and qemu-aarch64"),
    }


BUILDS = list(_builds())


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """The kernel sources compiled once per build: build name -> (compiler,
    flags, object files, runner)."""
    if not SRC.is_dir():
        pytest.skip("kernel sources not present (installed without the source tree)")
    made = {}

    def get(name):
        if name in made:
            return made[name]
        cc, extra, openmp, runner, missing = _builds()[name]
        if missing is not None:
            pytest.skip(missing)
        flags = [*CFLAGS, *extra, f"-I{SRC}"]
        flags += ["-fopenmp"] if openmp else ["-Wno-unknown-pragmas"]
        out = tmp_path_factory.mktemp(name)
        objects = []
        for source in sorted(SRC.glob("*.c")):
            obj = out / (source.stem + ".o")
            build = subprocess.run([cc, *flags, "-c", str(source), "-o", str(obj)],
                                   capture_output=True, text=True)
            assert build.returncode == 0, f"{name}: {build.stderr}"
            objects.append(str(obj))
        made[name] = (cc, flags, objects, runner)
        return made[name]

    return get


def run_program(kernels, name, program, tmp_path):
    """Build tests/<program>.c with build `name`'s kernels and run it."""
    cc, flags, objects, runner = kernels(name)
    exe = tmp_path / f"{program}-{name}"
    link = subprocess.run([cc, *flags, str(ROOT / "tests" / f"{program}.c"), *objects,
                           "-o", str(exe), "-lm"], capture_output=True, text=True)
    assert link.returncode == 0, f"{name}: {link.stderr}"
    run = subprocess.run([*runner, str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"{name}: {run.stderr}"
    return run.stdout


@pytest.mark.parametrize("build", BUILDS)
def test_c_program_uses_the_public_header(kernels, build, tmp_path):
    assert run_program(kernels, build, "c_api_test", tmp_path).strip() == "ok"


@pytest.mark.parametrize("build", BUILDS)
def test_same_bits_on_every_build(kernels, build, tmp_path):
    """loss_and_grads (per sample and summed), forward, the normals of both
    dtypes, every Monte Carlo method and descent ensembles in each data mode
    give the stored bits."""
    out = run_program(kernels, build, "c_rounding_test", tmp_path)
    assert len(out) > 100_000
    assert hashlib.sha256(out.encode()).hexdigest() == ROUNDING_SHA256, (
        f"the {build} build rounds differently from the stored results")


def test_header_version_is_the_package_version():
    if not SRC.is_dir():
        pytest.skip("kernel sources not present (installed without the source tree)")
    header = (SRC / "stefast.h").read_text()
    parts = [re.search(rf"#define STEFAST_VERSION_{p} (\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(parts) == importlib.metadata.version("stefast")
