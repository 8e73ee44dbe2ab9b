"""gnnsys.nn.dropout: the fused ReLU + dropout kernel.

Checks: keep rate and scaling, ReLU, repeatable under torch.manual_seed and independent of the
thread count, gradients (gradcheck with a fixed seed), eval/p=0 paths, fallbacks, validation.
"""

import numba
import pytest
import torch
import torch.nn.functional as F

from gnnsys.nn.dropout import _PER_CHUNK, relu_dropout


def _seeded(x, p, seed=0, **kw):
    torch.manual_seed(seed)
    return relu_dropout(x, p, **kw)


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keep_rate_scale_and_relu(relu, dtype):
    x = torch.randn(400, 500, generator=torch.Generator().manual_seed(1), dtype=dtype)
    p = 0.3
    out = _seeded(x, p, relu=relu)
    assert out.dtype == dtype and out.shape == x.shape
    kept = out != 0
    ref = F.relu(x) if relu else x
    torch.testing.assert_close(out[kept], ref[kept] / (1 - p))
    if relu:
        assert not bool(kept[x <= 0].any())
    candidates = (x > 0) if relu else torch.ones_like(x, dtype=torch.bool)
    rate = float(kept.sum()) / float(candidates.sum())
    assert abs(rate - (1 - p)) < 0.01  # ~100k-200k draws: 5+ standard deviations


def test_repeatable_and_seed_dependent():
    x = torch.randn(300, 64)
    a, b = _seeded(x, 0.5, seed=3), _seeded(x, 0.5, seed=3)
    assert torch.equal(a, b)
    assert not torch.equal(a, _seeded(x, 0.5, seed=4))
    torch.manual_seed(3)
    first, second = relu_dropout(x, 0.5), relu_dropout(x, 0.5)
    assert not torch.equal(first, second)  # each call draws a fresh seed


def test_same_result_whatever_the_thread_count():
    x = torch.randn(3 * _PER_CHUNK + 17)  # several chunks, so several threads take part
    old = numba.get_num_threads()
    try:
        outs, grads = [], []
        for t in sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)}):
            numba.set_num_threads(t)
            xi = x.clone().requires_grad_()
            out = _seeded(xi, 0.4)
            out.backward(torch.arange(x.numel(), dtype=torch.float32))
            outs.append(out.detach())
            grads.append(xi.grad)
    finally:
        numba.set_num_threads(old)
    assert all(torch.equal(outs[0], o) for o in outs)
    assert all(torch.equal(grads[0], g) for g in grads)


@pytest.mark.parametrize("relu", [True, False])
def test_gradients(relu):
    x = torch.randn(40, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: _seeded(t, 0.5, seed=2, relu=relu), (x,))
    out = _seeded(x, 0.5, seed=2, relu=relu)
    out.backward(torch.ones_like(out))
    # the gradient is the forward's pass-through mask times the scale
    passed = out.detach() != 0
    torch.testing.assert_close(x.grad, passed.to(x.dtype) * 2.0)


def test_eval_and_zero_p_are_plain_relu():
    x = torch.randn(50, 8)
    assert torch.equal(relu_dropout(x, 0.5, training=False), F.relu(x))
    assert torch.equal(relu_dropout(x, 0.0), F.relu(x))
    assert relu_dropout(x, 0.5, training=False, relu=False) is x


def test_half_precision_falls_back_to_torch():
    x = torch.randn(64, 8).to(torch.bfloat16)
    out = _seeded(x, 0.5)
    assert out.dtype == torch.bfloat16
    kept = out != 0
    torch.testing.assert_close(out[kept], (F.relu(x) * 2)[kept])


@pytest.mark.gpu
def test_cuda_tensors_use_torch_dropout():
    x = torch.randn(1000, 16, device="cuda", requires_grad=True)
    out = _seeded(x, 0.5)
    assert out.is_cuda
    kept = out != 0
    torch.testing.assert_close(out[kept], (F.relu(x) * 2)[kept])
    out.sum().backward()
    assert x.grad.is_cuda


def test_validation():
    x = torch.randn(4, 3)
    for bad in (1.0, -0.1, True, "0.5"):
        with pytest.raises(ValueError, match="p must be a probability in \\[0, 1\\)"):
            relu_dropout(x, bad)
    with pytest.raises(TypeError, match="x must be a floating-point tensor, got dtype torch.int64"):
        relu_dropout(torch.ones(3, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="x must be a torch.Tensor, got list"):
        relu_dropout([1.0, 2.0], 0.5)


def test_a_nan_passes_the_relu_as_in_torch():
    # F.relu(nan) is nan: a NaN feature must reach the loss, not be zeroed by the fused ReLU.
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    x[3, 5] = float("nan")
    x[7] = float("nan")
    y = _seeded(x, 0.25)
    assert int(torch.isnan(y[7]).sum()) >= 16  # the NaN row's kept elements (3 in 4 expected)
    finite = torch.isfinite(x)
    z = _seeded(torch.where(finite, x, torch.ones(())), 0.25)  # same seed: the same mask
    assert torch.equal(y[finite], z[finite])
    kept = z[~finite] != 0  # where the mask kept a (positive) one, it kept the NaN
    assert bool(torch.isnan(y[~finite][kept]).all()) and bool((y[~finite][~kept] == 0).all())
