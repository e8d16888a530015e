"""``python -m stefast.config``: print what a C, C++ or Cython build needs to
use the C library installed with stefast (the paths come from stefast._clib).
The same as functions, for a setup.py: get_include(), get_library_dir(),
cflags(), libs(), link_flags() (the flags after -lstefast), compiler().

    cc my_program.c $(python -m stefast.config --cflags --libs)
    PKG_CONFIG_PATH=$(python -m stefast.config --pkgconfigdir) pkg-config --libs stefast
    cmake -Dstefast_DIR=$(python -m stefast.config --cmakedir) ...
"""

import argparse
import shlex
import sys

from stefast._clib import (cflags, compiler, get_cmake_dir, get_include, get_library_dir,
                           get_pkgconfig_dir, libs, link_flags)

__all__ = ["get_include", "get_library_dir", "get_pkgconfig_dir", "get_cmake_dir", "cflags",
           "libs", "link_flags", "compiler", "main"]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m stefast.config",
        description="Print what a C, C++ or Cython build needs to use stefast's C library.")
    parser.add_argument("--cflags", action="store_true", help="compiler flags (-I...)")
    parser.add_argument("--libs", action="store_true", help="linker flags (-L... -lstefast ...)")
    parser.add_argument("--cc", action="store_true",
                        help="the C compiler that built the library (link with its family)")
    parser.add_argument("--includedir", action="store_true",
                        help="the include directory (holds stefast/stefast.h)")
    parser.add_argument("--libdir", action="store_true", help="the directory of libstefast.a")
    parser.add_argument("--pkgconfigdir", action="store_true",
                        help="the directory of stefast.pc, for PKG_CONFIG_PATH")
    parser.add_argument("--cmakedir", action="store_true",
                        help="the directory of stefast-config.cmake, for stefast_DIR")
    args = parser.parse_args(argv)
    if not any(vars(args).values()):
        parser.print_help()
        return 2
    flags = []
    if args.cflags:
        flags += cflags()
    if args.libs:
        flags += libs()
    lines = [shlex.join(flags)] if flags else []
    for option, get in (("cc", compiler), ("includedir", get_include), ("libdir", get_library_dir),
                        ("pkgconfigdir", get_pkgconfig_dir), ("cmakedir", get_cmake_dir)):
        if getattr(args, option):
            lines.append(get())
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
