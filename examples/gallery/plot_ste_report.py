"""
An STE report card
==================

:func:`stefast.ste_report` puts a straight-through estimator through the
paper's two tests on random instances of the population problem: is the
negative expected coarse gradient a descent direction of the loss in w
everywhere (Lemmas 5, 7 and 10), and does the expected coarse gradient vanish
at the global minimisers, the spurious minimisers and the saddles (Lemmas 6,
8 and 9)?

Any surrogate can be tested. Besides the four built-in ones, this card
includes the clipped surrogate of a 2-bit quantized ReLU with the fitted
resolution (:func:`stefast.quantized_ste`), which the closed forms handle by
quadrature.
"""

import matplotlib.pyplot as plt
import numpy as np

import stefast

alpha = stefast.optimal_alpha(2, "ceil")
surrogates = {name: name for name in stefast.STES}
surrogates["2-bit quantized, clipped"] = stefast.quantized_ste(2, alpha, "clipped_relu")

reports = {label: stefast.ste_report(ste, m=5, n=4, rng=0, n_theta=9, n_pairs=3)
           for label, ste in surrogates.items()}
print(reports["identity"])
print()
print(reports["2-bit quantized, clipped"])

# %%
# One line per surrogate: the smallest cosine between E[g] and df/dw, and the
# largest norm of E[g] at each kind of critical point.

sites = ("global", "spurious", "saddle")
print(f"{'surrogate':26s} {'min cos':>8s} " + " ".join(f"{s:>10s}" for s in sites))
for label, rep in reports.items():
    norms = {chk.site: chk.max_norm for chk in rep.vanishing}
    print(f"{label:26s} {rep.cosine_min:8.3f} " + " ".join(f"{norms[s]:10.2e}" for s in sites))

fig, ax = plt.subplots(figsize=(7, 3.5))
x = np.arange(len(reports))
for i, site in enumerate(sites):
    norms = [max(next(c.max_norm for c in rep.vanishing if c.site == site), 1e-17)
             for rep in reports.values()]
    ax.bar(x + (i - 1) * 0.25, norms, width=0.25, label=site)
ax.set_yscale("log")
ax.set_xticks(x, list(reports), rotation=15, fontsize=8)
ax.set(ylabel="largest |E[g]|", title="does the expected coarse gradient vanish?")
ax.legend(title="critical point", fontsize=8)
fig.tight_layout()
plt.show()
