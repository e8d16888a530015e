"""A small NumPy training engine for activation-quantized networks.

Float weights, b-bit quantized ReLU activations (``stefast.quantized_relu``)
trained with a straight-through estimator (``stefast.quantized_relu_grad``),
as in the paper's Section 4 (docs/math.rst,
section "Quantized ReLU"). No deep-learning framework:
layers are plain classes with ``forward`` / ``backward``, the gradients are
exact except at the quantized activations, where the chosen STE replaces the
a.e.-zero derivative.

Pieces:
    Linear, Conv2d, MaxPool2d, Flatten   float layers (He-initialised)
    BatchNorm                            batch norm WITHOUT scale and shift:
                                         x -> (x - mean) / sqrt(var + eps),
                                         so the activation sees ~N(0, 1)
    QuantizedReLU, ReLU                  activations (ReLU is the float baseline)
    Network                              a sequence of layers + softmax cross-entropy
    SGD                                  momentum, weight decay, step decay
    mlp(), lenet()                       the two architectures
    train(), evaluate()                  the loop; deterministic given ``rng``

Randomness (SPEC 7): ``rng`` is passed through ``np.random.default_rng`` once;
the initial weights are drawn first, then one permutation per epoch, so a
given seed reproduces a run exactly.
"""

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from stefast.quantized import (check_alpha, check_bits, check_quantized_ste,
                               check_rounding, optimal_alpha, quantized_relu,
                               quantized_relu_grad)

__all__ = [
    "BatchNorm", "Conv2d", "Flatten", "Linear", "MaxPool2d", "Network",
    "QuantizedReLU", "ReLU", "SGD", "evaluate", "lenet", "mlp",
    "softmax_cross_entropy", "train",
]


# ---- layers --------------------------------------------------------------------

class Layer:
    """Base class: no parameters, identity in train and eval mode."""

    params = ()

    def __init__(self):
        self.grads = []
        self.training = True

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError


class Linear(Layer):
    """y = x W + b, W of shape (n_in, n_out), He-normal initialisation."""

    def __init__(self, n_in, n_out, rng, dtype=np.float32, bias=True):
        super().__init__()
        W = rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
        self.W = W.astype(dtype)
        self.b = np.zeros(n_out, dtype=dtype) if bias else None
        self.params = (self.W,) if self.b is None else (self.W, self.b)

    def forward(self, x):
        self._x = x
        y = x @ self.W
        return y if self.b is None else y + self.b

    def backward(self, dy):
        dW = self._x.T @ dy
        self.grads = [dW] if self.b is None else [dW, dy.sum(axis=0)]
        return dy @ self.W.T


class Conv2d(Layer):
    """Valid 2-d convolution (cross-correlation), stride 1, no bias.

    x (N, C, H, W) -> y (N, F, H-k+1, W-k+1); the window view is turned into
    one matrix product (im2col), and the input gradient is the full
    correlation of the padded output gradient with the flipped filters.
    """

    def __init__(self, c_in, c_out, k, rng, dtype=np.float32):
        super().__init__()
        W = rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))
        self.W = W.astype(dtype)
        self.k = k
        self.params = (self.W,)
        self.need_dx = True

    def forward(self, x):
        self._x = x
        win = sliding_window_view(x, (self.k, self.k), axis=(2, 3))  # N,C,Ho,Wo,k,k
        y = np.tensordot(win, self.W, axes=([1, 4, 5], [1, 2, 3]))  # N,Ho,Wo,F
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2))

    def backward(self, dy):
        k = self.k
        win = sliding_window_view(self._x, (k, k), axis=(2, 3))
        self.grads = [np.tensordot(dy, win, axes=([0, 2, 3], [0, 2, 3]))]  # F,C,k,k
        if not self.need_dx:
            return None
        pad = np.pad(dy, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
        dwin = sliding_window_view(pad, (k, k), axis=(2, 3))  # N,F,H,W,k,k
        flipped = self.W[:, :, ::-1, ::-1]
        dx = np.tensordot(dwin, flipped, axes=([1, 4, 5], [0, 2, 3]))  # N,H,W,C
        return np.ascontiguousarray(dx.transpose(0, 3, 1, 2))


class MaxPool2d(Layer):
    """2x2 max pooling, stride 2. Ties (common after quantization) send the
    whole gradient to the first maximal entry, never to several."""

    def forward(self, x):
        N, C, H, W = x.shape
        xr = x.reshape(N, C, H // 2, 2, W // 2, 2).transpose(0, 1, 2, 4, 3, 5)
        xr = xr.reshape(N, C, H // 2, W // 2, 4)
        self._idx = np.argmax(xr, axis=-1)[..., None]
        self._shape = x.shape
        return np.take_along_axis(xr, self._idx, axis=-1)[..., 0]

    def backward(self, dy):
        N, C, H, W = self._shape
        d = np.zeros((N, C, H // 2, W // 2, 4), dtype=dy.dtype)
        np.put_along_axis(d, self._idx, dy[..., None], axis=-1)
        d = d.reshape(N, C, H // 2, W // 2, 2, 2).transpose(0, 1, 2, 4, 3, 5)
        return d.reshape(N, C, H, W)


class Flatten(Layer):
    def forward(self, x):
        self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return dy.reshape(self._shape)


class BatchNorm(Layer):
    """Batch norm without affine parameters, over all axes but the channel
    axis 1. Training mode uses batch statistics and updates running averages
    (``momentum``); eval mode uses the running averages."""

    def __init__(self, channels, dtype=np.float32, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps = eps
        self.momentum = momentum
        self.running_mean = np.zeros(channels, dtype=dtype)
        self.running_var = np.ones(channels, dtype=dtype)

    def _axes(self, x):
        return (0,) + tuple(range(2, x.ndim))

    def _bcast(self, v, x):
        return v.reshape((1, -1) + (1,) * (x.ndim - 2))

    def forward(self, x):
        axes = self._axes(x)
        if self.training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            m = self.momentum
            count = x.size // x.shape[1]
            unbiased = var * (count / max(count - 1, 1))
            self.running_mean = ((1 - m) * self.running_mean + m * mean).astype(x.dtype)
            self.running_var = ((1 - m) * self.running_var + m * unbiased).astype(x.dtype)
        else:
            mean, var = self.running_mean, self.running_var
        self._inv = (1.0 / np.sqrt(var + self.eps)).astype(x.dtype)
        y = (x - self._bcast(mean, x)) * self._bcast(self._inv, x)
        self._y = y
        return y

    def backward(self, dy):
        axes = self._axes(dy)
        y = self._y
        mean_dy = dy.mean(axis=axes, keepdims=True)
        mean_dyy = (dy * y).mean(axis=axes, keepdims=True)
        return (dy - mean_dy - y * mean_dyy) * self._bcast(self._inv, dy)


class QuantizedReLU(Layer):
    """b-bit quantized ReLU with resolution alpha and a straight-through
    backward pass. ``alpha=None`` takes :func:`stefast.optimal_alpha`."""

    def __init__(self, bits, ste="clipped_relu", alpha=None, rounding="ceil"):
        super().__init__()
        self.bits = check_bits(bits)
        self.rounding = check_rounding(rounding)
        self.alpha = optimal_alpha(self.bits, self.rounding) if alpha is None else check_alpha(alpha)
        self.ste = check_quantized_ste(ste)

    def forward(self, x):
        self._x = x
        return quantized_relu(x, self.bits, self.alpha, self.rounding)

    def backward(self, dy):
        return quantized_relu_grad(self._x, dy, self.bits, self.alpha, self.ste,
                                   rounding=self.rounding).grad_x


class ReLU(Layer):
    """Float ReLU with its exact gradient (baseline and gradient checks)."""

    def forward(self, x):
        self._mask = x > 0
        return np.where(self._mask, x, 0).astype(x.dtype)

    def backward(self, dy):
        return np.where(self._mask, dy, 0).astype(dy.dtype)


# ---- network and loss ------------------------------------------------------------

def softmax_cross_entropy(logits, y):
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    n = logits.shape[0]
    loss = -float(np.mean(logp[np.arange(n), y], dtype=np.float64))
    d = np.exp(logp)
    d[np.arange(n), y] -= 1
    return loss, (d / n).astype(logits.dtype)


class Network:
    """A sequence of layers ending in logits, trained with softmax cross-entropy."""

    def __init__(self, layers, input_shape):
        self.layers = list(layers)
        self.input_shape = tuple(input_shape)

    @property
    def params(self):
        return [p for layer in self.layers for p in layer.params]

    def set_training(self, flag):
        for layer in self.layers:
            layer.training = flag

    def set_ste(self, ste):
        """Switch the STE of every quantized activation (weights unchanged)."""
        for layer in self.layers:
            if isinstance(layer, QuantizedReLU):
                layer.ste = check_quantized_ste(ste)

    def _shape(self, X):
        return X.reshape((X.shape[0],) + self.input_shape)

    def forward(self, X):
        h = self._shape(X)
        for layer in self.layers:
            h = layer.forward(h)
        return h

    def loss_and_grads(self, X, y):
        """Training-mode loss on (X, y) and the gradients of self.params."""
        self.set_training(True)
        loss, d = softmax_cross_entropy(self.forward(X), y)
        for layer in reversed(self.layers):
            d = layer.backward(d)
        grads = [g for layer in self.layers for g in layer.grads]
        return loss, grads

    def predict_logits(self, X, batch_size=1000):
        self.set_training(False)
        return np.concatenate([self.forward(X[i:i + batch_size])
                               for i in range(0, X.shape[0], batch_size)])

    def state(self):
        """Copies of the weights and batch-norm statistics."""
        s = [p.copy() for p in self.params]
        for layer in self.layers:
            if isinstance(layer, BatchNorm):
                s += [layer.running_mean.copy(), layer.running_var.copy()]
        return s

    def load_state(self, state):
        it = iter(state)
        for p in self.params:
            p[...] = next(it)
        for layer in self.layers:
            if isinstance(layer, BatchNorm):
                layer.running_mean = next(it).copy()
                layer.running_var = next(it).copy()


def _activation(bits, ste, rounding):
    return ReLU() if bits is None else QuantizedReLU(bits, ste, rounding=rounding)


def mlp(rng=None, *, bits=2, ste="clipped_relu", hidden=(256, 128), n_in=784,
        n_classes=10, rounding="ceil", dtype=np.float32):
    """Fully connected net: [Linear -> BatchNorm -> quantized ReLU] per hidden
    layer, then a Linear classifier. ``bits=None`` uses a float ReLU."""
    rng = np.random.default_rng(rng)
    layers, n = [], n_in
    for h in hidden:
        layers += [Linear(n, h, rng, dtype, bias=False), BatchNorm(h, dtype),
                   _activation(bits, ste, rounding)]
        n = h
    layers.append(Linear(n, n_classes, rng, dtype))
    return Network(layers, (n_in,))


def lenet(rng=None, *, bits=2, ste="clipped_relu", channels=(6, 16), fc=(120, 84),
          image=28, n_classes=10, rounding="ceil", dtype=np.float32):
    """LeNet-5-style conv net: two [Conv5x5 -> BatchNorm -> act -> MaxPool2]
    stages, then [Linear -> BatchNorm -> act] layers and a Linear classifier."""
    rng = np.random.default_rng(rng)
    c1, c2 = channels
    conv1 = Conv2d(1, c1, 5, rng, dtype)
    conv1.need_dx = False  # the input needs no gradient
    layers = [conv1, BatchNorm(c1, dtype), _activation(bits, ste, rounding), MaxPool2d(),
              Conv2d(c1, c2, 5, rng, dtype), BatchNorm(c2, dtype),
              _activation(bits, ste, rounding), MaxPool2d(), Flatten()]
    side = ((image - 4) // 2 - 4) // 2
    n = c2 * side * side
    for h in fc:
        layers += [Linear(n, h, rng, dtype, bias=False), BatchNorm(h, dtype),
                   _activation(bits, ste, rounding)]
        n = h
    layers.append(Linear(n, n_classes, rng, dtype))
    return Network(layers, (1, image, image))


# ---- optimisation ------------------------------------------------------------------

class SGD:
    """SGD with (heavy-ball) momentum and L2 weight decay on >= 2-d weights."""

    def __init__(self, params, lr=0.1, momentum=0.9, weight_decay=1e-4):
        self.params = params
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads):
        for p, g, v in zip(self.params, grads, self.velocity):
            if self.weight_decay and p.ndim >= 2:
                g = g + self.weight_decay * p
            v *= self.momentum
            v -= self.lr * g
            p += v


def evaluate(net, X, y):
    """(loss, accuracy) in eval mode (batch-norm running statistics)."""
    logits = net.predict_logits(X)
    loss, _ = softmax_cross_entropy(logits, y)
    return loss, float(np.mean(np.argmax(logits, axis=1) == y))


def train(net, X, y, *, epochs=10, lr=0.1, batch_size=100, momentum=0.9,
          weight_decay=1e-4, milestones=(0.5, 0.75), decay=0.1, X_test=None,
          y_test=None, rng=None, progress=None):
    """Mini-batch SGD with step decay; returns the per-epoch history.

    The learning rate is multiplied by ``decay`` when the epoch count passes
    each fraction in ``milestones``. After every epoch the training loss and
    accuracy are measured in eval mode on the whole training set (and on the
    test set if given). Deterministic given ``rng``; ``progress(epoch, row)``
    is called after each epoch if given.

    Returns
    -------
    dict of lists: epoch, lr, train_loss, train_acc, test_loss, test_acc.
    """
    rng = np.random.default_rng(rng)
    dtype = net.params[0].dtype
    X = np.asarray(X, dtype=dtype)
    y = np.asarray(y)
    opt = SGD(net.params, lr, momentum, weight_decay)
    steps = [int(round(m * epochs)) for m in milestones]
    hist = {k: [] for k in ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc")}
    for epoch in range(1, epochs + 1):
        opt.lr = lr * decay ** sum(epoch > s for s in steps)
        order = rng.permutation(X.shape[0])
        for i in range(0, X.shape[0], batch_size):
            idx = order[i:i + batch_size]
            if idx.size < 2:
                continue  # batch norm needs two samples
            _, grads = net.loss_and_grads(X[idx], y[idx])
            opt.step(grads)
        tl, ta = evaluate(net, X, y)
        row = {"epoch": epoch, "lr": opt.lr, "train_loss": tl, "train_acc": ta,
               "test_loss": np.nan, "test_acc": np.nan}
        if X_test is not None:
            row["test_loss"], row["test_acc"] = evaluate(
                net, np.asarray(X_test, dtype=dtype), np.asarray(y_test))
        for k, v in row.items():
            hist[k].append(v)
        if progress is not None:
            progress(epoch, row)
    return hist
