"""
Coarse gradient descent and the identity STE near a spurious minimiser
======================================================================

Algorithm 1 of the paper moves v along the exact gradient of the population
loss and w along the expected coarse gradient of a straight-through
estimator. From a random start, all three STEs of the paper reach the global
minimiser here. Started next to a spurious minimiser (Proposition 1), ReLU
and clipped ReLU stay there, because their expected coarse gradients vanish
at it (Lemmas 6 and 8), while the identity STE's does not (Lemma 9): it shrinks
‖w‖ until a step carries w through the origin, the angle flips from π to 0
and the loss jumps; then the cycle repeats. The descent property of Theorem 1
fails for it.
"""

import matplotlib.pyplot as plt
import numpy as np

import stefast

rng = np.random.default_rng(0)
m, n = 10, 10
# a teacher with spurious minimisers: (1'v*)^2 < (m + 1)/2 |v*|^2
while True:
    v_star = rng.standard_normal(m)
    if stefast.critical_points(v_star).spurious_exists and abs(v_star.sum()) > 1:
        break
w_star = rng.standard_normal(n)
w_star /= np.linalg.norm(w_star)
cp = stefast.critical_points(v_star)

# random start
v0, w0 = rng.standard_normal(m), rng.standard_normal(n)
# within 0.01 of the spurious minimiser (v_spurious, -w*)
eps = 1e-2
e = rng.standard_normal(n)
e -= (e @ w_star) * w_star
e /= np.linalg.norm(e)
v_sp = cp.v_spurious + eps * rng.standard_normal(m)
w_sp = np.cos(np.pi - eps) * w_star + np.sin(np.pi - eps) * e

print(f"|E[g_identity]| at the spurious minimiser: "
      f"{stefast.identity_spurious_grad_norm(v_star):.3f} (Lemma 9)")

fig, axes = plt.subplots(1, 2, figsize=(9, 3.8))
starts = [("random start", v0, w0), ("next to a spurious minimiser", v_sp, w_sp)]
for ax, (title, v_init, w_init) in zip(axes, starts):
    for ste in ("identity", "relu", "clipped_relu"):
        tr = stefast.coarse_gradient_descent(v_init, w_init, v_star, w_star, ste=ste,
                                             lr=0.05, steps=1500)
        print(f"{title:30s} {ste:13s} f: {tr.f[0]:.3f} -> {tr.f[-1]:.3g}, "
              f"largest one-step rise {tr.max_increase():.3g}")
        if ax is axes[0]:
            ax.semilogy(tr.step, np.maximum(tr.f, 1e-16), label=ste)
        else:  # the first 200 steps, where the identity run's loss jumps
            ax.plot(tr.step[:201], tr.f[:201], label=ste)
    ax.set(title=title, xlabel="step", ylabel="population loss f")
axes[0].legend()
fig.tight_layout()
plt.show()
