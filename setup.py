"""Build of stefast's one extension module, stefast._core.

All compiler flags live here. Environment switches:
  STEFAST_DEBUG=1   -O0 -g and Cython bounds checks back on
  STEFAST_NATIVE=1  -march=native and no runtime dispatch (for comparisons;
                    such a build only runs on CPUs like the build machine)
  STEFAST_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer, any
                    report fatal (run Python with the sanitizer runtime
                    preloaded: .ci/run shows how)
"""

import os
import sys
import tempfile
from glob import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


def _flag(name):
    return os.environ.get(name, "0") not in ("", "0")


DEBUG = _flag("STEFAST_DEBUG")
NATIVE = _flag("STEFAST_NATIVE")
SANITIZE = _flag("STEFAST_SANITIZE")
SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                  "-fno-omit-frame-pointer", "-g"]


def _compiler_accepts(compiler, flag):
    """True if the compiler builds and links a small OpenMP program with flag."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void){return omp_get_max_threads() < 1;}\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
            compiler.link_executable(objs, os.path.join(tmp, "probe"), extra_postargs=[flag])
        except Exception:
            return False
    return True


class BuildExt(build_ext):
    def build_extensions(self):
        unix = self.compiler.compiler_type == "unix"
        # OpenMP threads the batch loops; without it the kernels run serially
        # with identical results (the pragmas are ignored).
        openmp = unix and _compiler_accepts(self.compiler, "-fopenmp")
        for ext in self.extensions:
            if unix:
                ext.extra_compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
                # no FMA contraction: every dispatch clone rounds identically;
                # no errno from sqrt, so that it vectorises (normal_impl.h)
                ext.extra_compile_args += ["-ffp-contract=off", "-fno-math-errno"]
                if NATIVE:
                    ext.extra_compile_args += ["-march=native"]
                    ext.define_macros += [("STEFAST_NO_DISPATCH", "1")]
                # debug info valgrind 3.19 (tests/test_memory_safety.py) can
                # read: it gives up on clang 14's default DWARF 5
                ext.extra_compile_args += ["-gdwarf-4"]
                # GCC notes that passing a vector by value changes the ABI
                # without AVX; the vector helpers are always inlined, so no
                # call has that ABI
                ext.extra_compile_args += ["-Wno-psabi"]
                if openmp:
                    ext.extra_compile_args += ["-fopenmp"]
                    ext.extra_link_args += ["-fopenmp"]
                if SANITIZE:
                    ext.extra_compile_args += SANITIZE_FLAGS
                    ext.extra_link_args += SANITIZE_FLAGS
            elif self.compiler.compiler_type == "msvc":
                ext.extra_compile_args += ["/O2", "/fp:precise", "/openmp"]
        if not openmp and unix:
            print("stefast: compiler has no OpenMP; kernels will run single-threaded",
                  file=sys.stderr)
        super().build_extensions()


extensions = [
    Extension(
        "stefast._core",
        sources=["stefast/_core.pyx"] + sorted(glob("src_c/*.c")),
        # NumPy's C API: the whole-call fast paths check arrays and make
        # results without the buffer protocol's per-call cost
        include_dirs=["src_c", numpy.get_include()],
        depends=sorted(glob("src_c/*.h")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
    )
]

directives = {"language_level": 3}
if DEBUG:
    directives.update(boundscheck=True, wraparound=True, initializedcheck=True)

setup(
    ext_modules=cythonize(extensions, compiler_directives=directives),
    cmdclass={"build_ext": BuildExt},
)
