"""Build of stefast's C library and its one extension module, stefast._core.

The C core (src_c/*.c) is compiled once, into the static library
libstefast.a that the package installs for other programs to link
(stefast/lib, with stefast.pc and a CMake package; the header goes to
stefast/include/stefast/stefast.h); stefast._core links that same library.

All compiler flags live here. Environment switches:
  STEFAST_DEBUG=1   -O0 -g and Cython bounds checks back on
  STEFAST_NATIVE=1  -march=native and no runtime dispatch (for comparisons;
                    such a build only runs on CPUs like the build machine)
  STEFAST_SANITIZE=1  AddressSanitizer + UndefinedBehaviorSanitizer, any
                    report fatal (run Python with the sanitizer runtime
                    preloaded: .ci/run shows how)
  OBJCOPY           the objcopy that localizes the library's internal
                    symbols (default: objcopy, else llvm-objcopy)
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from glob import glob

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

C_SOURCES = sorted(glob("src_c/*.c"))
C_HEADERS = sorted(glob("src_c/*.h"))
PUBLIC_HEADER = "src_c/stefast.h"


def _header_version():
    """The library's version, from stefast.h's STEFAST_VERSION_* macros (the
    package's version: tests/test_c_api.py checks that they agree)."""
    with open(PUBLIC_HEADER) as f:
        text = f.read()
    return ".".join(re.search(rf"#define STEFAST_VERSION_{part} (\d+)", text).group(1)
                    for part in ("MAJOR", "MINOR", "PATCH"))


VERSION = _header_version()


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


def _objcopy():
    for tool in (os.environ.get("OBJCOPY"), "objcopy", "llvm-objcopy"):
        if tool and shutil.which(tool):
            return tool
    return None


def _pkgconfig_text(link_flags):
    # ${pcfiledir}: pkg-config's own variable, so the file stays valid wherever
    # the package is installed (a wheel is relocatable)
    return f"""\
# stefast's C library as installed inside the Python package (written by setup.py)
prefix=${{pcfiledir}}/../..
includedir=${{prefix}}/include
libdir=${{prefix}}/lib

Name: stefast
Description: straight-through-estimator kernels of the stefast Python package (static library)
Version: {VERSION}
Cflags: -I${{includedir}}
Libs: -L${{libdir}} -lstefast {" ".join(link_flags)}
"""


def _cmake_config_text(link_options, link_libraries):
    return f"""\
# find_package(stefast CONFIG) for the C library inside the stefast Python
# package (written by setup.py). Paths are relative to this file, so the
# package works wherever it is installed. Gives the target stefast::stefast.
get_filename_component(_stefast_prefix "${{CMAKE_CURRENT_LIST_DIR}}/../../.." ABSOLUTE)
if(NOT TARGET stefast::stefast)
  add_library(stefast::stefast STATIC IMPORTED)
  set_target_properties(stefast::stefast PROPERTIES
    IMPORTED_LOCATION "${{_stefast_prefix}}/lib/libstefast.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${{_stefast_prefix}}/include"
    INTERFACE_LINK_OPTIONS "{";".join(link_options)}"
    INTERFACE_LINK_LIBRARIES "{";".join(link_libraries)}")
endif()
set(stefast_INCLUDE_DIRS "${{_stefast_prefix}}/include")
set(stefast_LIBRARIES stefast::stefast)
unset(_stefast_prefix)
"""


def _cmake_version_text():
    major, minor = VERSION.split(".")[:2]
    # 0.x releases may change anything (docs/c_api_versions.md): a 0.x
    # request is met by the same minor version only, later ones by the same major
    return f"""\
set(PACKAGE_VERSION "{VERSION}")
if(PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION)
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif(NOT PACKAGE_FIND_VERSION_MAJOR STREQUAL "{major}")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
elseif("{major}" STREQUAL "0" AND NOT PACKAGE_FIND_VERSION_MINOR STREQUAL "{minor}")
  set(PACKAGE_VERSION_COMPATIBLE FALSE)
else()
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
  if(PACKAGE_FIND_VERSION STREQUAL PACKAGE_VERSION)
    set(PACKAGE_VERSION_EXACT TRUE)
  endif()
endif()
"""


class BuildExt(build_ext):
    def build_extensions(self):
        unix = self.compiler.compiler_type == "unix"
        # OpenMP threads the batch loops; without it the kernels run serially
        # with identical results (the pragmas are ignored).
        openmp = unix and _compiler_accepts(self.compiler, "-fopenmp")
        compile_args, link_args, macros = [], [], []
        if unix:
            compile_args += ["-O0", "-g"] if DEBUG else ["-O3"]
            # no FMA contraction: every dispatch clone rounds identically;
            # no errno from sqrt, so that it vectorises (normal_impl.h)
            compile_args += ["-ffp-contract=off", "-fno-math-errno"]
            if NATIVE:
                compile_args += ["-march=native"]
                macros += [("STEFAST_NO_DISPATCH", "1")]
            # debug info valgrind 3.19 (tests/test_memory_safety.py) can
            # read: it gives up on clang 14's default DWARF 5
            compile_args += ["-gdwarf-4"]
            # GCC notes that passing a vector by value changes the ABI
            # without AVX; the vector helpers are always inlined, so no
            # call has that ABI
            compile_args += ["-Wno-psabi"]
            if openmp:
                compile_args += ["-fopenmp"]
                link_args += ["-fopenmp"]
            if SANITIZE:
                compile_args += SANITIZE_FLAGS
                link_args += SANITIZE_FLAGS
        elif self.compiler.compiler_type == "msvc":
            compile_args += ["/O2", "/fp:precise", "/openmp"]
        if not openmp and unix:
            print("stefast: compiler has no OpenMP; kernels will run single-threaded",
                  file=sys.stderr)

        # the package directory the build fills: build/lib*/stefast, or the
        # source tree's stefast/ for an in-place (editable) build
        package_dir = os.path.dirname(self.get_ext_fullpath("stefast._core"))
        include_dir = os.path.join(package_dir, "include")
        lib_dir = os.path.join(package_dir, "lib")
        self._package_dir = package_dir
        self._c_files = []  # everything below written into the package
        library = self._build_library(lib_dir, compile_args, macros, unix)
        self._install_header(include_dir)
        self._write_package_configs(lib_dir, link_args, unix)

        for ext in self.extensions:
            ext.extra_compile_args += compile_args
            ext.extra_link_args += link_args
            ext.define_macros += macros
            ext.include_dirs.insert(0, include_dir)
            ext.extra_objects.append(library)
            # relink when the library changes
            ext.depends = list(ext.depends) + [library]
        super().build_extensions()

    def _build_library(self, lib_dir, compile_args, macros, unix):
        """libstefast.a from src_c/*.c: position-independent (the extension
        module links it), and on ELF platforms only the functions declared in
        stefast.h left global. Returns its path."""
        tmp = os.path.join(self.build_temp, "libstefast")
        os.makedirs(tmp, exist_ok=True)
        os.makedirs(lib_dir, exist_ok=True)
        args = list(compile_args)
        if unix:
            # stefast.h gives its declarations default visibility; everything
            # else in the kernels is hidden, then made local below
            args += ["-fPIC", "-fvisibility=hidden"]
        objects = self.compiler.compile(C_SOURCES, output_dir=tmp, macros=macros,
                                        include_dirs=["src_c"], extra_postargs=args,
                                        depends=C_HEADERS, debug=self.debug)
        if unix:
            objects = [self._localize_hidden(objects, tmp)]
        out = self.compiler.library_filename("stefast", lib_type="static", output_dir=lib_dir)
        if os.path.exists(out):
            os.remove(out)  # ar would add to an old archive
        self.compiler.create_static_lib(objects, "stefast", output_dir=lib_dir, debug=self.debug)
        self._c_files.append(out)
        return out

    def _localize_hidden(self, objects, tmp):
        """One relocatable object from objects (ld -r) whose hidden symbols are
        local: a program linking libstefast.a sees only stefast.h's names."""
        combined = os.path.join(tmp, "stefast_combined.o")
        cc = self.compiler.compiler_so[0]
        subprocess.run([cc, "-r", "-nostdlib", "-o", combined, *objects], check=True)
        objcopy = _objcopy()
        if objcopy is None:
            print("stefast: no objcopy found; libstefast.a keeps its hidden symbols global",
                  file=sys.stderr)
        else:
            # hidden symbols local, and every global but stefast_* as well:
            # Clang gives its target_clones resolvers (name.resolver) default
            # visibility whatever -fvisibility says
            subprocess.run([objcopy, "--localize-hidden", "--wildcard",
                            "--keep-global-symbol=stefast_*", combined], check=True)
        return combined

    def _install_header(self, include_dir):
        target = os.path.join(include_dir, "stefast")
        os.makedirs(target, exist_ok=True)
        self.copy_file(PUBLIC_HEADER, os.path.join(target, "stefast.h"))
        self._c_files.append(os.path.join(target, "stefast.h"))

    def _write_package_configs(self, lib_dir, link_args, unix):
        """stefast.pc, the CMake package and link.json (read by stefast.config),
        all from the one list of flags a program linking libstefast.a needs."""
        link_options = list(dict.fromkeys(link_args))  # -fopenmp, sanitizers
        link_libraries = ["m"] if unix else []
        link_flags = link_options + [f"-l{lib}" for lib in link_libraries]
        files = {
            os.path.join(lib_dir, "pkgconfig", "stefast.pc"): _pkgconfig_text(link_flags),
            os.path.join(lib_dir, "cmake", "stefast", "stefast-config.cmake"):
                _cmake_config_text(link_options, link_libraries),
            os.path.join(lib_dir, "cmake", "stefast", "stefast-config-version.cmake"):
                _cmake_version_text(),
            # the compiler too: GCC's OpenMP runtime (libgomp) and LLVM's
            # (libomp) differ, so -fopenmp links the right one only with a
            # compiler of the family that built the library
            os.path.join(lib_dir, "link.json"): json.dumps(
                {"link_flags": link_flags, "compiler": self.compiler.compiler_so[0],
                 "openmp": "-fopenmp" in link_options}, indent=1) + "\n",
        }
        for path, text in files.items():
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            self._c_files.append(path)

    def get_outputs(self):
        return super().get_outputs() + list(getattr(self, "_c_files", []))

    def copy_extensions_to_source(self):
        """An editable install builds in a temporary directory and copies the
        extension module into the source tree: the C library goes with it."""
        super().copy_extensions_to_source()
        source_package = self.get_finalized_command("build_py").get_package_dir("stefast")
        for path in getattr(self, "_c_files", []):
            target = os.path.join(source_package, os.path.relpath(path, self._package_dir))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            self.copy_file(path, target)


extensions = [
    Extension(
        "stefast._core",
        sources=["stefast/_core.pyx"],
        # the C core comes from libstefast.a (BuildExt); NumPy's C API: the
        # whole-call fast paths check arrays and make results without the
        # buffer protocol's per-call cost
        include_dirs=["src_c", numpy.get_include()],
        depends=C_SOURCES + C_HEADERS,
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
