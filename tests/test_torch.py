"""stefast.torch: the custom operations give the NumPy API's bits forward and
backward, pass torch.library.opcheck, compile, and reject what they cannot take."""

import doctest

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import stefast
from stefast import surrogates
from test_quantized import _inputs as quantized_inputs
from util import elementwise_inputs, model_problem

torch = pytest.importorskip("torch")
st = pytest.importorskip("stefast.torch")

DTYPES = (np.float32, np.float64)
QSTES = ("identity", "relu", "clipped_relu")
# every registry name, plus objects with parameters of their own (they travel as their repr)
SURROGATES = (*surrogates.registry(),
              surrogates.swish_sign(2.5, scale=0.5),
              surrogates.window(float("-inf"), 0.25, closed=(False, True), scale=2.0),
              surrogates.piecewise_polynomial([-1.0, 0.0, 1.0], [[1.0, 1.0], [1.0, -1.0]]),
              surrogates.tanh(2.0, offset=0.1))


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the 2-core machine is shared
    yield
    torch.set_num_threads(threads)


def leaf(a):
    """A tensor sharing a's values (a copy: the test keeps a for the NumPy API)."""
    return torch.from_numpy(np.array(a, copy=True)).requires_grad_()


def ste_name(ste):
    return ste if isinstance(ste, str) else repr(ste)


def as_numpy_ste(ste):
    """The NumPy API's form of ste (it takes STES names and registry objects)."""
    return surrogates.registry()[ste] if isinstance(ste, str) else ste


# ---- binarize and sign ----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ste", SURROGATES, ids=ste_name)
@pytest.mark.parametrize("op", ["binarize", "sign"])
def test_elementwise_forward_backward_are_the_numpy_apis(op, ste, dtype):
    rng = np.random.default_rng(1)
    for x in elementwise_inputs(rng):
        x = x.astype(dtype)
        g = rng.standard_normal(x.shape).astype(dtype)
        xt = leaf(x)
        y = getattr(st, op)(xt, ste=ste)
        assert y.dtype == xt.dtype and y.shape == xt.shape
        assert_array_equal(y.detach().numpy(), getattr(stefast, op)(x))
        y.backward(torch.from_numpy(g))
        assert_array_equal(xt.grad.numpy(), stefast.ste_grad(x, g, ste=as_numpy_ste(ste)))


def test_surrogate_object_and_its_name_give_the_same_gradient():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    st.sign(x, ste=surrogates.swish_sign()).sum().backward()
    by_object = x.grad.clone()
    x.grad = None
    st.sign(x, ste="swish_sign").sum().backward()
    assert torch.equal(by_object, x.grad)
    assert (by_object > 0).any() and (by_object == 0).sum() < 41  # not all zero


def test_default_surrogates():
    x = torch.tensor([-1.5, -0.5, 0.5, 1.5], dtype=torch.float64, requires_grad=True)
    st.binarize(x).sum().backward()  # relu: 1[x > 0]
    assert x.grad.tolist() == [0.0, 0.0, 1.0, 1.0]
    x.grad = None
    st.sign(x).sum().backward()  # ste_sign: 1[|x| <= 1]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_non_contiguous_input_and_gradient():
    """A transposed input and the stride-0 gradient of .sum() are copied, not misread."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 4))
    xt = torch.from_numpy(x.copy()).requires_grad_()
    y = st.binarize(xt.T, ste="hardtanh")
    assert y.is_contiguous()
    assert_array_equal(y.detach().numpy(), stefast.binarize(x.T))
    y.sum().backward()
    assert_array_equal(xt.grad.numpy(), stefast.ste_grad(x, np.ones_like(x), "hardtanh"))


# ---- quantized ReLU -------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("rounding", ["ceil", "nearest"])
@pytest.mark.parametrize("alpha_grad", ["exact", "lsq"])
def test_quantized_relu_forward_backward_are_the_numpy_apis(dtype, bits, rounding, alpha_grad):
    rng = np.random.default_rng(bits)
    alpha = stefast.optimal_alpha(bits, rounding)
    x = quantized_inputs(dtype, bits, alpha, rng)
    g = rng.standard_normal(x.shape).astype(dtype)
    for ste in QSTES:
        xt = leaf(x)
        alpha_t = torch.nn.Parameter(torch.tensor(alpha, dtype=xt.dtype))
        y = st.quantized_relu(xt, bits, alpha_t, ste, rounding=rounding, alpha_grad=alpha_grad)
        assert_array_equal(y.detach().numpy(), stefast.quantized_relu(x, bits, alpha, rounding))
        y.backward(torch.from_numpy(g))
        want = stefast.quantized_relu_grad(x, g, bits, alpha, ste, rounding=rounding,
                                           alpha_grad=alpha_grad)
        assert_array_equal(xt.grad.numpy(), want.grad_x)
        assert alpha_t.grad.dtype == xt.dtype and alpha_t.grad.shape == ()
        assert alpha_t.grad.item() == want.grad_alpha and want.grad_alpha != 0


def test_alpha_is_learned():
    """Gradient descent on alpha alone lowers a quantization error: the
    gradient reaches alpha and points downhill."""
    rng = np.random.default_rng(3)
    x = torch.from_numpy(np.abs(rng.standard_normal(4000)))
    alpha = torch.nn.Parameter(torch.tensor(0.05, dtype=torch.float64))
    opt = torch.optim.SGD([alpha], lr=0.02)
    errors = []
    for _ in range(40):
        opt.zero_grad()
        err = (st.quantized_relu(x, 2, alpha, rounding="nearest") - x).square().mean()
        err.backward()
        opt.step()
        errors.append(err.item())
    assert errors[-1] < 0.5 * errors[0]
    assert abs(alpha.item() - stefast.optimal_alpha(2, "nearest")) < 0.1


def test_alpha_as_a_number_and_in_another_dtype():
    x = torch.tensor([-1.0, 0.2, 0.7, 2.0], requires_grad=True)
    y = st.quantized_relu(x, 1, 1.0)
    assert y.dtype == torch.float32 and y.tolist() == [0.0, 1.0, 1.0, 1.0]
    alpha = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)  # one element, 1-d
    st.quantized_relu(x, 2, alpha).sum().backward()
    want = stefast.quantized_relu_grad(x.detach().numpy(), np.ones(4, np.float32), 2, 0.5)
    assert alpha.grad.dtype == torch.float64 and alpha.grad.shape == (1,)
    assert alpha.grad.item() == float(want.grad_alpha)


# ---- the two-layer model's loss: Algorithm 1 -------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ste", ["relu", "clipped_relu", surrogates.swish_sign(3.0)],
                         ids=ste_name)
def test_loss_and_coarse_gradient_are_loss_and_grads(dtype, ste):
    rng = np.random.default_rng(4)
    for B, threads in ((None, None), (1, 1), (37, 2)):
        Z, v, w, v_star, w_star = model_problem(rng, B, 5, 7, dtype)
        vt, wt = leaf(v), leaf(w)
        loss = st.loss(torch.from_numpy(Z), vt, wt, torch.from_numpy(v_star),
                       torch.from_numpy(w_star), ste=ste, threads=threads)
        loss.backward()
        want = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="mean")
        assert loss.dtype == vt.dtype and loss.shape == ()
        assert loss.item() == want.loss
        assert_array_equal(vt.grad.numpy(), want.grad_v)
        assert_array_equal(wt.grad.numpy(), want.grad_w)


def test_algorithm1_as_a_torch_loop_is_coarse_gradient_descent():
    """torch.optim.SGD over st.loss takes stefast's steps bitwise: the NumPy
    loop over loss_and_grads, and coarse_gradient_descent's full-batch
    empirical mode (the C loop) to rounding."""
    rng = np.random.default_rng(5)
    Z, v0, w0, v_star, w_star = model_problem(rng, 200, 6, 4)
    lr, steps = 0.5, 60
    v, w = torch.nn.Parameter(torch.from_numpy(v0.copy())), torch.nn.Parameter(
        torch.from_numpy(w0.copy()))
    opt = torch.optim.SGD([v, w], lr=lr)
    Zt, vs, ws = map(torch.from_numpy, (Z, v_star, w_star))
    v_np, w_np = v0.copy(), w0.copy()
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = st.loss(Zt, v, w, vs, ws, ste="clipped_relu")
        loss.backward()
        opt.step()
        g = stefast.loss_and_grads(Z, v_np, w_np, v_star, w_star, ste="clipped_relu")
        assert loss.item() == g.loss
        v_np, w_np = v_np - lr * g.grad_v, w_np - lr * g.grad_w
        assert_array_equal(v.detach().numpy(), v_np)
        assert_array_equal(w.detach().numpy(), w_np)
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]  # it descends
    tr = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste="clipped_relu", lr=lr,
                                         steps=steps, mode="empirical", Z=Z)
    np.testing.assert_allclose(v.detach().numpy(), tr.v_final, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(w.detach().numpy(), tr.w_final, rtol=1e-12, atol=1e-12)


# ---- torch.library checks and torch.compile ----------------------------------

def _opcheck_cases():
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.standard_normal((5, 7)))
    g = torch.from_numpy(rng.standard_normal((5, 7)))
    alpha = torch.tensor(0.4, dtype=torch.float64)
    Z, v, w, v_star, w_star = map(torch.from_numpy, model_problem(rng, 16, 4, 3))
    req = (lambda t: t.clone().requires_grad_())
    ops = torch.ops.stefast
    yield "binarize", ops.binarize.default, (req(x), "relu")
    yield "sign", ops.sign.default, (req(x.float()), "swish_sign(beta=2.0, scale=1.0)")
    yield "ste_grad", ops.ste_grad.default, (x, g, "hardtanh")
    yield "quantized_relu", ops.quantized_relu.default, (
        req(x), 2, req(alpha), "clipped_relu", "ceil", "exact")
    yield "quantized_relu_grad", ops.quantized_relu_grad.default, (
        x, g, 2, alpha, "relu", "nearest", "lsq")
    yield "loss_and_grads", ops.loss_and_grads.default, (Z, req(v), req(w), v_star, w_star,
                                                          "relu", None)


@pytest.mark.parametrize("case", list(_opcheck_cases()), ids=lambda c: c[0])
def test_opcheck(case):
    # every default test util applies: test_aot_dispatch_dynamic compares the
    # registered backward traced by AOTAutograd with the same backward run
    # eagerly, not with a numerical derivative (which a straight-through
    # backward is not, by design: torch.autograd.gradcheck is not run)
    _, op, args = case
    torch.library.opcheck(op, args)


class _QuantizedNet(torch.nn.Module):
    """A small network using every operation (x: (B, 6))."""

    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(6, 8, bias=False)
        self.alpha = torch.nn.Parameter(torch.tensor(0.4))
        # built here, not in forward: torch.compile would trace its NumPy checks
        self.sign_ste = surrogates.swish_sign(2.0)

    def forward(self, x):
        h = st.quantized_relu(self.lin(x), 2, self.alpha, "clipped_relu", rounding="ceil")
        return (st.sign(h - 0.3, ste=self.sign_ste).sum(dim=1)
                + st.binarize(x, ste="hardtanh").sum(dim=1))


def _run(forward, net, x):
    """Output, x's gradient and net's parameters' gradients of ``forward(x).square().sum()``."""
    net.zero_grad()
    x.grad = None
    y = forward(x)
    y.square().sum().backward()
    grads = {name: p.grad.clone() for name, p in net.named_parameters()}
    return dict(y=y.detach().clone(), x_grad=x.grad.clone(), **grads)


# inductor's C++ code generation still calls a deprecated torch.jit API
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("backend", ["inductor", "aot_eager"])
def test_compiled_module_gives_the_same_results(backend):
    torch.manual_seed(0)
    net = _QuantizedNet()
    x = torch.randn(32, 6, requires_grad=True)
    eager = _run(net, net, x)
    compiled = _run(torch.compile(net, backend=backend, fullgraph=True), net, x)
    assert eager.keys() == compiled.keys() == {"y", "x_grad", "alpha", "lin.weight"}
    for name in eager:
        assert torch.equal(eager[name], compiled[name]), name
    assert eager["alpha"].item() != 0 and eager["x_grad"].abs().sum() > 0


def test_compiled_algorithm1_step():
    rng = np.random.default_rng(7)
    Z, v0, w0, v_star, w_star = map(torch.from_numpy, model_problem(rng, 64, 5, 3))

    def loss_fn(v, w):
        return st.loss(Z, v, w, v_star, w_star, ste="relu")

    results = []
    for fn in (loss_fn, torch.compile(loss_fn, backend="aot_eager", fullgraph=True)):
        v, w = v0.clone().requires_grad_(), w0.clone().requires_grad_()
        loss = fn(v, w)
        loss.backward()
        results.append((loss.detach(), v.grad, w.grad))
    for a, b in zip(*results):
        assert torch.equal(a, b)


# ---- what the operations reject -------------------------------------------

def test_bad_dtypes_devices_and_arguments():
    x = torch.randn(4)
    with pytest.raises(TypeError, match=r"x must be float32 or float64, got torch.float16"):
        st.binarize(x.half())
    with pytest.raises(TypeError, match=r"x must be float32 or float64, got torch.int64"):
        st.sign(torch.arange(3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got ndarray"):
        st.binarize(np.zeros(3))
    # meta is the one non-CPU device every torch build has
    meta = torch.empty(3, device="meta")
    with pytest.raises(ValueError, match=r"x must be on the CPU .* got a tensor on meta"):
        st.binarize(meta)
    with pytest.raises(ValueError, match=r"x must be on the CPU .* got a tensor on meta"):
        st.quantized_relu(meta, 2, 1.0)
    with pytest.raises(ValueError, match=r"Z must be on the CPU .* got a tensor on meta"):
        st.loss(meta.reshape(1, 3, 1), *[torch.zeros(k) for k in (3, 1, 3, 1)])
    assert torch.ops.stefast.binarize(meta, "relu").shape == (3,)  # the fake computes shapes
    with pytest.raises(ValueError, match="callable"):
        st.binarize(x, ste=lambda t: np.ones_like(t))
    with pytest.raises(ValueError, match="registry"):
        st.sign(x, ste="not_a_surrogate")
    with pytest.raises(ValueError, match="registry"):
        st.sign(x, ste="__import__('os')")
    with pytest.raises(ValueError, match="bits"):
        st.quantized_relu(x, 0, 1.0)
    with pytest.raises(ValueError, match="ste"):
        st.quantized_relu(x, 2, 1.0, "hardtanh")
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        st.quantized_relu(x, 2, -1.0)
    with pytest.raises(ValueError, match="alpha must have one element"):
        st.quantized_relu(x, 2, torch.ones(2))
    with pytest.raises(ValueError, match="alpha must be finite and > 0"):
        st.quantized_relu(x, 2, torch.tensor(0.0))
    Z, v = torch.randn(3, 4, 2), torch.randn(4)
    with pytest.raises(TypeError, match="share one dtype"):
        st.loss(Z, v, torch.randn(2), v, torch.randn(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"w must have shape \(2,\)"):
        st.loss(Z, v, torch.randn(3), v, torch.randn(2))
    with pytest.raises(ValueError, match="threads"):
        st.loss(Z, v, torch.randn(2), v, torch.randn(2), threads=0)
    with pytest.raises(ValueError, match="empty batch"):
        st.loss(Z[:0], v, torch.randn(2), v, torch.randn(2))


def test_docstring_examples():
    result = doctest.testmod(st, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
