"""stefast's C functions as ctypes function pointers, for JIT compilers.

``c_function("stefast_loss_and_grads_sum_d")`` returns a ctypes function
pointer with the header's signature. Numba's ``@njit`` code calls such
objects directly, with no Python in between, so a simulator written in Numba
can run the kernels and the Gaussian generator inside its own compiled loops
(docs/c_api.rst, section "Calling the kernels from Numba";
examples/embed/numba). Any other tool that takes a C address and a
signature (cffi, llvmlite) can use ``c_address`` with the header
``stefast.get_include()`` points to.

Where the pointers come from: stefast._core takes the address of every
function of the header when it is linked with libstefast.a, so nothing here
looks symbols up in a shared object's dynamic table. The signatures are read
from ``stefast/cstefast.pxd``, the package's one mirror of ``stefast.h``;
nothing else in the package writes them down.

Types as ctypes sees them: ``double``, ``float``, ``int64_t``, ``uint64_t``
and ``int`` are themselves; pointers to them are typed pointers (from
``@njit`` code pass ``array.ctypes``: Numba checks that the array's dtype
matches); every enum (``stefast_status``, ``stefast_ste``, ...) is ``int``;
pointers to the structs ``stefast_surrogate`` and ``stefast_descent_options``
are ``void *``; ``const char *`` results are ``c_char_p``, which Python
callers can read but Numba cannot type, so ``stefast_version`` and
``stefast_strerror`` are for Python callers only.

This module does not import Numba and works without it.
"""

import ctypes
import difflib
import functools
import re
from pathlib import Path

from stefast import _core

__all__ = ["c_function", "c_address", "function_names", "STATUS_CODES", "STE_CODES",
           "ROUNDING_CODES", "ALPHA_GRAD_CODES", "MC_METHOD_CODES", "SURROGATE_KINDS"]

# the values of the header's enums, for the int arguments and results
STATUS_CODES = dict(_core.STATUS_CODES)
STE_CODES = dict(_core.STE_CODES)
ROUNDING_CODES = dict(_core.ROUNDING_CODES)
ALPHA_GRAD_CODES = dict(_core.ALPHA_GRAD_CODES)
MC_METHOD_CODES = dict(_core.MC_METHOD_CODES)
SURROGATE_KINDS = dict(_core.SURROGATE_KINDS)

_PXD = Path(__file__).resolve().with_name("cstefast.pxd")

_SCALARS = {
    "double": ctypes.c_double,
    "float": ctypes.c_float,
    "int64_t": ctypes.c_int64,
    "uint64_t": ctypes.c_uint64,
    "int": ctypes.c_int,
}

_PARAMETER = re.compile(r"^(?:const\s+)?(\w+)\s*(\**)\s*(\w+)$")
_DECLARATION = re.compile(r"(?:const\s+)?(\w+)\s*(\**)\s*\b(stefast_\w+)\s*\(([^()]*)\)")


@functools.cache
def _declarations():
    """{name: (return type, [parameter types])} of every function that
    cstefast.pxd declares, as ctypes types."""
    try:
        text = _PXD.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"stefast.jit reads the C signatures from {_PXD}, which is missing: this stefast "
            "was installed without its .pxd files") from None
    code = re.sub(r"#.*?$", "", text, flags=re.M)
    enums = set(re.findall(r"ctypedef\s+enum\s+(\w+)\s*:", code))
    structs = set(re.findall(r"ctypedef\s+struct\s+(\w+)\s*:", code))

    def ctype(base, stars, where):
        if base in enums and not stars:
            # every enum of the header holds small non-negative values, which
            # GCC and Clang pass like an int
            return ctypes.c_int
        if base in _SCALARS and len(stars) <= 1:
            return ctypes.POINTER(_SCALARS[base]) if stars else _SCALARS[base]
        if base == "void" and not stars:
            return None
        if base == "char" and stars == "*":
            return ctypes.c_char_p
        if base in structs and stars == "*":
            return ctypes.c_void_p
        # a kind of declaration this reader was not written for: say so rather
        # than guess a calling convention
        raise TypeError(f"stefast.jit cannot map the C type {base} {stars} in {where} "
                        f"({_PXD.name}) to ctypes")

    table = {}
    for ret, ret_stars, name, params in _DECLARATION.findall(code):
        params = " ".join(params.split())
        argtypes = []
        if params and params != "void":
            for param in params.split(","):
                match = _PARAMETER.match(param.strip())
                if match is None:
                    raise TypeError(f"stefast.jit cannot read the parameter {param.strip()!r} "
                                    f"of {name} ({_PXD.name})")
                argtypes.append(ctype(match[1], match[2], name))
        table[name] = (ctype(ret, ret_stars, name), argtypes)
    return table


def function_names():
    """The names of the C functions ``c_function`` gives, sorted.

    Returns
    -------
    list of str
        Every function of ``stefast.h`` (``stefast_binarize_d``, ...).

    Examples
    --------
    >>> import stefast.jit
    >>> "stefast_loss_and_grads_d" in stefast.jit.function_names()
    True
    """
    return sorted(_declarations())


def _check_name(name):
    if name not in _declarations() or name not in _core.C_FUNCTION_ADDRESSES:
        close = difflib.get_close_matches(str(name), function_names(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"stefast has no C function {name!r}{hint} "
                         "(stefast.jit.function_names() lists them)")


def c_address(name):
    """The address of stefast's C function ``name`` in this process.

    Parameters
    ----------
    name : str
        A function of ``stefast.h``, e.g. ``"stefast_normals_d"``.

    Returns
    -------
    int
        The function's address, valid while ``stefast`` is imported.

    Raises
    ------
    ValueError
        If ``stefast.h`` has no function of that name.

    Examples
    --------
    >>> import stefast.jit
    >>> stefast.jit.c_address("stefast_binarize_d") != 0
    True
    """
    _check_name(name)
    return _core.C_FUNCTION_ADDRESSES[name]


@functools.cache
def c_function(name):
    """stefast's C function ``name`` as a ctypes function pointer with the
    header's signature, callable from ``@numba.njit`` code.

    Parameters
    ----------
    name : str
        A function of ``stefast.h``, e.g. ``"stefast_loss_and_grads_d"``.

    Returns
    -------
    ctypes function pointer
        Its ``argtypes`` and ``restype`` follow the header (see the module
        docstring for how C types map). In ``@njit`` code pass arrays as
        ``array.ctypes``; enum arguments as ints (``STE_CODES`` and friends
        hold their values) and compare the returned ``stefast_status`` with
        ``STATUS_CODES["STEFAST_OK"]``. Calls from Python release the GIL.

    Raises
    ------
    ValueError
        If ``stefast.h`` has no function of that name.

    Examples
    --------
    >>> import ctypes, numpy as np, stefast.jit
    >>> binarize = stefast.jit.c_function("stefast_binarize_d")
    >>> x = np.array([-1.0, 0.0, 2.0]); out = np.empty(3)
    >>> p = ctypes.POINTER(ctypes.c_double)
    >>> binarize(x.ctypes.data_as(p), out.ctypes.data_as(p), 3), out
    (0, array([0., 0., 1.]))
    """
    _check_name(name)
    restype, argtypes = _declarations()[name]
    prototype = ctypes.CFUNCTYPE(restype, *argtypes)
    return prototype(_core.C_FUNCTION_ADDRESSES[name])
