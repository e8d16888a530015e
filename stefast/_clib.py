"""Where the installed C library is, and the flags a program needs to use it
(the command line is stefast.config).

The package ships stefast's C core for other programs to link:
``include/stefast/stefast.h`` (the public header), ``lib/libstefast.a`` (a
static, position-independent library: the one stefast._core itself links),
``lib/pkgconfig/stefast.pc`` and ``lib/cmake/stefast`` (``find_package(stefast
CONFIG)``, target ``stefast::stefast``), all inside the installed package
directory (docs/c_api.rst, "Building against the installed package").

``python -m stefast.config --cflags --libs`` prints the flags of a build;
``--pkgconfigdir`` and ``--cmakedir`` the directories to add to
``PKG_CONFIG_PATH`` and ``CMAKE_PREFIX_PATH``.
"""

import json
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

__all__ = ["get_include", "get_library_dir", "get_pkgconfig_dir", "get_cmake_dir",
           "cflags", "libs", "link_flags", "compiler"]


def _existing(path, what):
    if not path.exists():
        raise FileNotFoundError(
            f"stefast's {what} is not at {path}: this stefast was not built with its C "
            "library (build it with `pip install .`, or `pip install -e .` in a checkout)")
    return str(path)


def get_include():
    """The directory to put on the include path of a C, C++ or Cython build
    that uses stefast's C library: it holds ``stefast/stefast.h``.

    Returns
    -------
    str
        ``include`` inside the installed package.

    Examples
    --------
    >>> import os, stefast
    >>> os.path.isfile(os.path.join(stefast.get_include(), "stefast", "stefast.h"))
    True
    """
    return _existing(_PACKAGE / "include", "include directory")


def get_library_dir():
    """The directory holding ``libstefast.a``, the static C library that
    stefast._core itself links (link with ``-L<dir> -lstefast``, plus the
    flags of ``python -m stefast.config --libs``).

    Returns
    -------
    str
        ``lib`` inside the installed package; ``lib/pkgconfig`` holds
        ``stefast.pc`` and ``lib/cmake/stefast`` the CMake package.

    Examples
    --------
    >>> import os, stefast
    >>> os.path.isfile(os.path.join(stefast.get_library_dir(), "libstefast.a"))
    True
    """
    return _existing(_PACKAGE / "lib", "library directory")


def get_pkgconfig_dir():
    """The directory holding ``stefast.pc`` (for ``PKG_CONFIG_PATH``)."""
    return _existing(_PACKAGE / "lib" / "pkgconfig", "pkg-config directory")


def get_cmake_dir():
    """The directory holding ``stefast-config.cmake`` (for ``stefast_DIR``; the
    package directory, the parent of get_include(), works in
    ``CMAKE_PREFIX_PATH``)."""
    return _existing(_PACKAGE / "lib" / "cmake" / "stefast", "CMake package directory")


def _build_record():
    """What setup.py wrote about the build of libstefast.a (lib/link.json)."""
    return json.loads((Path(get_library_dir()) / "link.json").read_text())


def compiler():
    """The C compiler that built libstefast.a. With OpenMP, link with one of
    its family (GCC's -fopenmp means libgomp, LLVM's libomp)."""
    return _build_record()["compiler"]


def link_flags():
    """What a program linking libstefast.a needs after it, as a list (the
    OpenMP flag when the library has OpenMP, sanitizer flags for a
    STEFAST_SANITIZE build, -lm)."""
    return list(_build_record()["link_flags"])


def cflags():
    """Compiler flags, as a list: the include directory."""
    return [f"-I{get_include()}"]


def libs():
    """Linker flags, as a list: the library, then what it needs."""
    return [f"-L{get_library_dir()}", "-lstefast", *link_flags()]
