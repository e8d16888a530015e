"""Build of the example extension against the installed stefast:

    python setup.py build_ext --inplace

Cython finds stefast/cstefast.pxd in the installed package, the compiler
finds the header through stefast.get_include() and the linker libstefast.a
through stefast.get_library_dir(), then the flags the library needs (OpenMP,
-lm: stefast.config.link_flags()).
"""
import stefast
import stefast.config
from Cython.Build import cythonize
from setuptools import Extension, setup

extension = Extension(
    "simulate_cy",
    sources=["simulate_cy.pyx"],
    include_dirs=[stefast.get_include()],
    library_dirs=[stefast.get_library_dir()],
    libraries=["stefast"],
    extra_link_args=stefast.config.link_flags(),
)

setup(name="simulate-cy", ext_modules=cythonize([extension]))
