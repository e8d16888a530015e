"""Bad input raises ValueError/TypeError naming the argument and what was
expected; fast and reference raise the same errors."""

import numpy as np
import pytest

import stefast
from stefast import reference as ref

Z = np.ones((4, 3, 5))
v, w = np.ones(3), np.ones(5)


@pytest.fixture(params=["fast", "reference"])
def api(request):
    return stefast if request.param == "fast" else ref


@pytest.mark.parametrize("kwargs, exc, pattern", [
    (dict(v=np.ones(4)), ValueError, r"v has length 4 but Z has 3 rows \(Z.shape\[-2\]\)"),
    (dict(w=np.ones(2)), ValueError, r"w has length 2 but Z has 5 columns"),
    (dict(v_star=np.ones(2)), ValueError, r"v_star has length 2"),
    (dict(w_star=np.ones(6)), ValueError, r"w_star has length 6"),
    (dict(v=np.ones((3, 1))), ValueError, r"v must be 1-d of length 3, got shape \(3, 1\)"),
    (dict(Z=np.ones(5)), ValueError, r"Z must have shape \(m, n\) or \(B, m, n\), got 1-d"),
    (dict(Z=np.ones((2, 2, 3, 5))), ValueError, r"got 4-d array"),
    (dict(Z=np.ones((4, 0, 5)), v=np.ones(0)), ValueError, r"m >= 1 rows and n >= 1 columns"),
    (dict(Z=np.ones((4, 3, 5), complex)), TypeError, r"Z must be real, got complex"),
    (dict(Z=np.array([[["a"]]])), TypeError, r"Z must have a real numeric dtype"),
    (dict(v=[None, None, None]), TypeError, r"v must have a real numeric dtype, got dtype object"),
    (dict(ste="tanh"), ValueError, r"ste must be one of 'identity', 'relu', 'clipped_relu', 'hardtanh'; got 'tanh'"),
    (dict(reduce="max"), ValueError, r"reduce must be one of 'mean', 'sum', 'none'; got 'max'"),
    (dict(threads=0), ValueError, r"threads must be None or an integer >= 1 and <= 1024, got 0"),
    (dict(threads=1.5), TypeError, r"threads must be None or an integer, got float 1.5"),
])
def test_loss_and_grads_errors(api, kwargs, exc, pattern):
    args = dict(Z=Z, v=v, w=w, v_star=v, w_star=w)
    args.update(kwargs)
    opts = {k: args.pop(k) for k in ("ste", "reduce", "threads") if k in args}
    with pytest.raises(exc, match=pattern):
        api.loss_and_grads(args["Z"], args["v"], args["w"], args["v_star"], args["w_star"], **opts)


def test_forward_errors(api):
    with pytest.raises(ValueError, match="v has length 2"):
        api.forward(Z, np.ones(2), w)
    with pytest.raises(TypeError, match="Z must be real"):
        api.forward(Z.astype(complex), v, w)


@pytest.mark.parametrize("name", ["binarize", "sign"])
def test_out_errors(api, name):
    fn = getattr(api, name)
    x = np.zeros((2, 3))
    with pytest.raises(TypeError, match=r"out must have dtype float64, got dtype float32"):
        fn(x, out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"out must have shape \(2, 3\), got shape \(3, 2\)"):
        fn(x, out=np.zeros((3, 2)))
    ro = np.zeros((2, 3))
    ro.setflags(write=False)
    with pytest.raises(ValueError, match="out is read-only"):
        fn(x, out=ro)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray, got list"):
        fn(x, out=[0.0] * 6)
    with pytest.raises(TypeError, match="x must be real"):
        fn(np.ones(2, complex))


def test_ste_grad_errors(api):
    with pytest.raises(ValueError, match=r"grad must have the shape of x \(3,\), got shape \(4,\)"):
        api.ste_grad(np.ones(3), np.ones(4))
    with pytest.raises(ValueError, match="ste must be one of"):
        api.ste_grad(np.ones(3), np.ones(3), ste=None)
