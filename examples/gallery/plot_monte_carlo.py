"""
Monte Carlo converging to the closed form
=========================================

:func:`stefast.monte_carlo` estimates the expected coarse gradient by sampling
Gaussian inputs; :func:`stefast.expected_coarse_grad` gives it exactly. The
error of the estimate shrinks like one over the square root of the number of
samples, and stays within a few of its own standard errors. The three
samplers are unbiased; the conditional one (Rao-Blackwell) has the smallest
standard error for the same number of samples.
"""

import matplotlib.pyplot as plt
import numpy as np

import stefast

rng = np.random.default_rng(4)
m, n = 8, 6
v, w, v_star, w_star = (rng.standard_normal(k) for k in (m, n, m, n))
exact = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="clipped_relu").grad_w

counts = np.array([1_000, 4_000, 16_000, 64_000])
fig, ax = plt.subplots(figsize=(7, 4))
for method in ("full", "projected", "conditional"):
    errors, ses = [], []
    for count in counts:
        est = stefast.monte_carlo(v, w, v_star, w_star, ste="clipped_relu",
                                  n_samples=int(count), method=method, rng=1)
        errors.append(np.linalg.norm(est.grad_w - exact))
        ses.append(np.linalg.norm(est.grad_w_se))
        z = np.max(np.abs(est.grad_w - exact) / est.grad_w_se)
        print(f"{method:12s} N = {count:6d}: |error| = {errors[-1]:.2e}, "
              f"|SE| = {ses[-1]:.2e}, largest |error|/SE = {z:.2f}")
    (line,) = ax.loglog(counts, errors, "o-", label=f"{method}: error")
    ax.loglog(counts, ses, ":", color=line.get_color(), label=f"{method}: standard error")
ax.loglog(counts, ses[0] * np.sqrt(counts[0] / counts), "k--", lw=0.8, label="1/sqrt(N)")
ax.set(xlabel="samples N", ylabel="norm of the grad_w error",
       title="Monte Carlo vs closed form (clipped ReLU STE)")
ax.legend(fontsize=7)
fig.tight_layout()
plt.show()
