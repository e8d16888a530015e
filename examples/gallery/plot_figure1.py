"""
Figure 1: the sample loss along a sample coarse gradient
=========================================================

Remark 1 of the paper: take one step of size η along the negative coarse
gradient computed on N samples, and evaluate the same N-sample loss after the
step. For few samples the loss, as a function of η, is jagged (the binary
activation makes it piecewise constant in w); for many samples it approaches
the smooth population loss.

Everything here is public API: :func:`stefast.loss_and_grads` for the sample
gradients, :func:`stefast.forward` for the empirical loss along the step, and
:func:`stefast.population_loss` for the exact curve.
"""

import matplotlib.pyplot as plt
import numpy as np

import stefast

rng = np.random.default_rng(2)
m, n = 10, 10
v_star = rng.standard_normal(m)
w_star = rng.standard_normal(n)
w_star /= np.linalg.norm(w_star)
v0 = rng.standard_normal(m)
# a unit start orthogonal to w* (theta = pi/2)
w0 = rng.standard_normal(n)
w0 -= (w0 @ w_star) * w_star
w0 /= np.linalg.norm(w0)

etas = np.linspace(0.0, 0.2, 201)
fig, ax = plt.subplots(figsize=(7, 4))
for N in (10, 50, 1000):
    Z = rng.standard_normal((N, m, n))
    step = stefast.loss_and_grads(Z, v0, w0, v_star, w_star, ste="relu")
    y_star = stefast.forward(Z, v_star, w_star)
    sample_loss = [
        0.5 * np.mean((stefast.forward(Z, v0 - eta * step.grad_v, w0 - eta * step.grad_w)
                       - y_star) ** 2)
        for eta in etas
    ]
    (line,) = ax.plot(etas, sample_loss, label=f"N = {N}")
    exact = stefast.population_loss(v0 - etas[:, None] * step.grad_v,
                                     w0 - etas[:, None] * step.grad_w, v_star, w_star)
    ax.plot(etas, exact, "--", color=line.get_color(), lw=1)
    rises = int(np.sum(np.diff(sample_loss) > 0))
    print(f"N = {N:4d}: loss {sample_loss[0]:.3f} -> {sample_loss[-1]:.3f}, "
          f"{rises} of {len(etas) - 1} grid steps rise")

ax.set(xlabel="step size η", ylabel="loss after one step",
       title="sample loss (solid) and population loss (dashed) along the step")
ax.legend()
fig.tight_layout()
plt.show()
