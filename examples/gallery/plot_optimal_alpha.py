"""
The fitted resolution of the quantized ReLU
===========================================

A batch norm without scale and shift before each activation makes its
positive inputs half-Gaussian, so the paper fixes the resolution α of the
b-bit quantized ReLU to the value that fits that law best in mean squared
error. :func:`stefast.optimal_alpha` computes it from a closed form of the
error. Here the error is measured on a sample of half-Gaussian values with
:func:`stefast.quantized_relu`, and its minimum lands on the fitted α.
"""

import matplotlib.pyplot as plt
import numpy as np

import stefast

x = np.abs(np.random.default_rng(0).standard_normal(200_000))

fig, ax = plt.subplots(figsize=(7, 4))
for bits in (1, 2, 4):
    best = stefast.optimal_alpha(bits, "nearest")
    alphas = best * np.linspace(0.5, 1.6, 111)
    mse = [np.mean((stefast.quantized_relu(x, bits, a, rounding="nearest") - x) ** 2)
           for a in alphas]
    (line,) = ax.semilogy(alphas, mse, label=f"{bits} bit(s)")
    ax.axvline(best, color=line.get_color(), ls=":")
    print(f"bits = {bits}: optimal_alpha = {best:.6f}, "
          f"sample minimum at alpha = {alphas[int(np.argmin(mse))]:.4f}")

ax.set(xlabel="resolution α", ylabel="mean squared error on |N(0, 1)|",
       title="quantization error; dotted: stefast.optimal_alpha")
ax.legend()
fig.tight_layout()
plt.show()
