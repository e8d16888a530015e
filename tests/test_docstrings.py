"""The examples in the public docstrings run and print what they say."""

import doctest
import importlib

import pytest

MODULES = ["stefast.kernels", "stefast.analytic", "stefast.quantized", "stefast.montecarlo",
           "stefast.descent", "stefast.surrogates", "stefast._clib", "stefast.jit",
           "stefast.sweeps"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"


def test_every_public_function_has_an_example():
    """The API reference shows a runnable example for every exported function."""
    import inspect

    import stefast

    missing = [name for name in stefast.__all__
               if inspect.isfunction(getattr(stefast, name))
               and "Examples\n" not in (inspect.getdoc(getattr(stefast, name)) or "")]
    assert not missing, f"no Examples section: {missing}"
