"""im2win_conv2d against F.conv2d: random shapes, the im2win paper's 12 layers, gradients, the
window tensor and its size formula, determinism, argument errors, and the Triton kernels (run
by the interpreter on CPU tensors here, compiled on a GPU when there is one).

References are computed by F.conv2d in float64 (TF32 off on CUDA), so the tolerances measure
this op's own rounding.
"""

import math

import numba
import pytest
import torch
import torch.nn.functional as F

from gnnsys._numba import run_items
from gnnsys.ops import conv
from gnnsys.ops.conv import im2win, im2win_conv2d, window_shape, window_size

# The 12 benchmark layers of the im2win paper (Lu et al., 2023), as listed in the authors'
# benchmark code (seth-lu/Im2win, benchmarks/benchmarks.h, test_conv1..12): (C, H, W, K, F, s),
# square F x F filters, no padding. They run there at batch 128; here at batch 1.
PAPER_LAYERS = [
    (3, 227, 227, 96, 11, 4),
    (3, 231, 231, 96, 11, 4),
    (3, 227, 227, 64, 7, 2),
    (32, 224, 224, 64, 7, 2),
    (96, 24, 24, 256, 5, 1),
    (256, 12, 12, 512, 3, 1),
    (3, 224, 224, 64, 3, 1),
    (64, 112, 112, 128, 3, 1),
    (64, 56, 56, 64, 3, 1),
    (128, 28, 28, 128, 3, 1),
    (256, 14, 14, 256, 3, 1),
    (512, 7, 7, 512, 3, 1),
]


@pytest.fixture(autouse=True)
def _no_tf32():
    old = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = old


def _ref(x, w, b, *args):
    """F.conv2d in float64 on the same (possibly rounded) values."""
    return F.conv2d(x.double(), w.double(), None if b is None else b.double(), *args)


def _tol(dtype, ref, reduction):
    """Absolute tolerance: output rounding plus accumulation error over ``reduction`` terms."""
    eps = {torch.float64: 1e-15, torch.float32: 1e-6, torch.float16: 1e-3, torch.bfloat16: 8e-3}
    scale = float(ref.detach().abs().max()) + 1.0
    return 4 * eps[dtype] * scale * (1 + math.sqrt(reduction))


def _check(y, ref, dtype, reduction):
    assert y.dtype == dtype and y.shape == ref.shape
    err = float((y.detach().double() - ref.detach()).abs().max()) if ref.numel() else 0.0
    assert err <= _tol(dtype, ref, reduction), f"max error {err:.3g}"


def _random_case(g):
    """A random conv: strides 1/2/4, padding (int, pair, 'same', 'valid'), dilation, groups."""

    def r(lo, hi):
        return int(torch.randint(lo, hi + 1, (), generator=g))

    groups = [1, 1, 2, 3][r(0, 3)]
    cin, k = groups * r(1, 4), groups * r(1, 12)
    fh, fw = r(1, 5), r(1, 5)
    stride = [1, 2, 4, (1, 2), (4, 1)][r(0, 4)]
    dilation = [1, 1, 2, (1, 3)][r(0, 3)]
    pad_choice = r(0, 4)
    if pad_choice == 0:
        padding = 0
    elif pad_choice == 1:
        padding = r(0, 3)
    elif pad_choice == 2:
        padding = (r(0, 2), r(0, 3))
    elif pad_choice == 3:
        padding = "valid"
    else:
        padding, stride = "same", 1
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    h = dh * (fh - 1) + 1 + r(0, 12)
    w = dw * (fw - 1) + 1 + r(0, 12)
    return dict(
        shape=(r(1, 3), cin, h, w),
        wshape=(k, cin // groups, fh, fw),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        bias=bool(r(0, 1)),
    )


def _run_case(case, dtype, g, device="cpu"):
    x = torch.randn(case["shape"], generator=g, dtype=torch.float64).to(dtype).to(device)
    w = torch.randn(case["wshape"], generator=g, dtype=torch.float64).to(dtype).to(device)
    b = torch.randn(case["wshape"][0], generator=g, dtype=torch.float64).to(dtype).to(device)
    b = b if case["bias"] else None
    args = (case["stride"], case["padding"], case["dilation"], case["groups"])
    y = im2win_conv2d(x, w, b, *args)
    _check(y, _ref(x, w, b, *args), dtype, math.prod(case["wshape"][1:]))


# ------------------------------------------------------------------------------ forward
@pytest.mark.filterwarnings("ignore:Using padding='same'")  # the F.conv2d reference's note
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_random_shapes_match_conv2d(dtype):
    g = torch.Generator().manual_seed(1)
    for _ in range(40):
        _run_case(_random_case(g), dtype, g)


def test_wide_channels_and_tails():
    # Output channels beyond one 32-wide block, columns not a multiple of the 4-column tile,
    # more input channels than one cache chunk (16).
    g = torch.Generator().manual_seed(2)
    for k, cin, w in [(33, 17, 9), (70, 40, 6), (1, 1, 1), (128, 3, 13)]:
        x = torch.randn(2, cin, 7, w, generator=g)
        wt = torch.randn(k, cin, 3, 1, generator=g)
        y = im2win_conv2d(x, wt, stride=(2, 1), padding=(1, 0))
        _check(y, _ref(x, wt, None, (2, 1), (1, 0)), torch.float32, cin * 3)


@pytest.mark.parametrize("layer", range(1, 13))
def test_paper_layers(layer):
    c, h, w, k, f, s = PAPER_LAYERS[layer - 1]
    g = torch.Generator().manual_seed(layer)
    x = torch.randn(1, c, h, w, generator=g)
    wt = torch.randn(k, c, f, f, generator=g) / math.sqrt(c * f * f)
    y = im2win_conv2d(x, wt, stride=s)
    _check(y, _ref(x, wt, None, s), torch.float32, c * f * f)


def test_paper_layer_sizes_beat_im2col():
    # The layout's point: the window tensor is smaller than im2col's matrix on every layer.
    for c, h, w, _k, f, s in PAPER_LAYERS:
        oh, ow = (h - f) // s + 1, (w - f) // s + 1
        assert window_size((128, c, h, w), f, s) < 128 * c * f * f * oh * ow


def test_unbatched_and_empty_batch():
    x = torch.randn(3, 8, 9)
    w = torch.randn(4, 3, 3, 3)
    y = im2win_conv2d(x, w, padding=1)
    assert y.shape == (4, 8, 9)
    _check(y, _ref(x, w, None, 1, 1), torch.float32, 27)
    empty = im2win_conv2d(torch.randn(0, 3, 8, 9), w)
    assert empty.shape == (0, 4, 6, 7)


def test_empty_batch_gradients_are_zeros_not_none():
    # Before: input.grad and bias.grad stayed None (the empty result was attached to weight only).
    x = torch.randn(0, 3, 8, 9, requires_grad=True)
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    im2win_conv2d(x, w, b, padding=1).sum().backward()
    assert x.grad is not None and x.grad.shape == x.shape
    assert torch.equal(w.grad, torch.zeros_like(w))
    assert torch.equal(b.grad, torch.zeros_like(b))


def test_non_contiguous_inputs():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 9, 11, 4, generator=g).permute(0, 3, 1, 2)  # [2, 4, 9, 11] strided
    w = torch.randn(5, 3, 4, 2, generator=g).transpose(1, 2)  # [5, 4, 3, 2] strided
    y = im2win_conv2d(x, w, stride=2, padding=1)
    _check(y, _ref(x, w, None, 2, 1), torch.float32, 24)


# ------------------------------------------------------------------------------ window
def _window_reference(x, fh, stride, padding, dilation):
    """win[n, c, i, col*FH + r] = x_pad[n, c, i*sh + r*dh, col], built with plain indexing."""
    sh = stride if isinstance(stride, int) else stride[0]
    dh = dilation if isinstance(dilation, int) else dilation[0]
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    xp = F.pad(x, (pw, pw, ph, ph))
    n, c, hp, wp = xp.shape
    oh = (hp - dh * (fh - 1) - 1) // sh + 1
    rows = torch.arange(oh)[:, None] * sh + torch.arange(fh)[None, :] * dh  # [OH, FH]
    band = xp[:, :, rows, :]  # [N, C, OH, FH, Wp]
    return band.permute(0, 1, 2, 4, 3).reshape(n, c, oh, wp * fh)


@pytest.mark.parametrize(
    "shape,kernel,stride,padding,dilation",
    [
        ((2, 3, 9, 11), 3, 1, 0, 1),
        ((1, 2, 10, 7), (3, 2), 2, (1, 2), (2, 1)),
        ((1, 1, 13, 5), (5, 1), (4, 1), 2, 1),
        ((2, 4, 6, 6), 1, 1, 0, 1),
    ],
)
def test_window_tensor_and_size_formula(shape, kernel, stride, padding, dilation):
    x = torch.randn(shape)
    win = im2win(x, kernel, stride, padding, dilation)
    fh, fw = (kernel, kernel) if isinstance(kernel, int) else kernel
    sh = stride if isinstance(stride, int) else stride[0]
    dh = dilation if isinstance(dilation, int) else dilation[0]
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    n, c, h, w = shape
    oh = (h + 2 * ph - dh * (fh - 1) - 1) // sh + 1
    formula = (n, c, oh, (w + 2 * pw) * fh)
    assert tuple(win.shape) == formula == window_shape(shape, kernel, stride, padding, dilation)
    assert window_size(shape, kernel, stride, padding, dilation) == math.prod(formula)
    assert torch.equal(win, _window_reference(x, fh, stride, padding, dilation))


def test_window_docstring_example():
    win = im2win(torch.arange(16.0).view(1, 1, 4, 4), 2)
    assert win[0, 0, 0].tolist() == [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]
    assert window_size((1, 3, 227, 227), 11, stride=4) == 3 * 55 * 227 * 11
    # 'same' pads asymmetrically for even kernels, as F.conv2d does.
    assert window_shape((1, 1, 8, 8), 4, padding="same") == (1, 1, 8, 11 * 4)


# ------------------------------------------------------------------------------ gradients
@pytest.mark.parametrize(
    "shape,wshape,kw",
    [
        ((1, 2, 5, 6), (3, 2, 3, 2), dict(stride=1, padding=1)),
        ((1, 2, 6, 7), (2, 1, 2, 3), dict(stride=2, padding=(0, 1), dilation=(1, 2), groups=2)),
        ((1, 2, 7, 5), (2, 2, 4, 2), dict(padding="same")),
        ((1, 1, 9, 9), (2, 1, 3, 3), dict(stride=4, dilation=2)),
    ],
)
def test_gradcheck_float64(shape, wshape, kw):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(shape, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(wshape, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(wshape[0], generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: im2win_conv2d(x, w, b, **kw), (x, w, b))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_gradients_match_conv2d(dtype):
    g = torch.Generator().manual_seed(5)
    for _ in range(12):
        case = _random_case(g)
        x = torch.randn(case["shape"], generator=g, dtype=dtype, requires_grad=True)
        w = torch.randn(case["wshape"], generator=g, dtype=dtype, requires_grad=True)
        args = (case["stride"], case["padding"], case["dilation"], case["groups"])
        y = im2win_conv2d(x, w, None, *args)
        gy = torch.randn(y.shape, generator=g, dtype=dtype)
        gx, gw = torch.autograd.grad(y, (x, w), gy)
        xd, wd = x.detach().double().requires_grad_(), w.detach().double().requires_grad_()
        rx, rw = torch.autograd.grad(F.conv2d(xd, wd, None, *args), (xd, wd), gy.double())
        _check(gx, rx, dtype, case["wshape"][0] * math.prod(case["wshape"][2:]))
        _check(gw, rw, dtype, y.shape[0] * y.shape[2] * y.shape[3])


def test_paper_layer_backward_small():
    # Backward on layers 1, 6 and 12 (11x11 stride 4; 3x3 with 256 and 512 channels), batch 1.
    for layer in (1, 6, 12):
        c, h, w, k, f, s = PAPER_LAYERS[layer - 1]
        g = torch.Generator().manual_seed(layer)
        x = torch.randn(1, c, h, w, generator=g, requires_grad=True)
        wt = torch.randn(k, c, f, f, generator=g, requires_grad=True)
        y = im2win_conv2d(x, wt, stride=s)
        gy = torch.randn(y.shape, generator=g)
        gx, gw = torch.autograd.grad(y, (x, wt), gy)
        xd, wd = x.detach().double().requires_grad_(), wt.detach().double().requires_grad_()
        rx, rw = torch.autograd.grad(F.conv2d(xd, wd, None, s), (xd, wd), gy.double())
        _check(gx, rx, torch.float32, k * f * f)
        _check(gw, rw, torch.float32, y.shape[2] * y.shape[3])


def test_grad_only_for_what_requires_it():
    x = torch.randn(1, 2, 5, 5)
    w = torch.randn(3, 2, 3, 3, requires_grad=True)
    b = torch.randn(3)
    (gw,) = torch.autograd.grad(im2win_conv2d(x, w, b).sum(), (w,))
    assert gw.shape == w.shape and x.grad is None


# ------------------------------------------------------------------------------ determinism
def test_same_bits_whatever_the_thread_count(monkeypatch):
    monkeypatch.setattr(conv, "_PARALLEL_MIN_WORK", 0)  # small inputs take the parallel path too
    g = torch.Generator().manual_seed(6)
    x = torch.randn(2, 20, 15, 13, generator=g, requires_grad=True)
    w = torch.randn(40, 10, 3, 3, generator=g, requires_grad=True)
    old = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, 2, old}):
            numba.set_num_threads(threads)
            y = im2win_conv2d(x, w, stride=(1, 2), padding=1, groups=2)
            results.append((y, *torch.autograd.grad(y, (x, w), torch.ones_like(y))))
    finally:
        numba.set_num_threads(old)
    for a, b in zip(results[0], results[-1]):
        assert torch.equal(a, b)


def test_cpu_kernels_are_serial_and_cover_any_item_split(monkeypatch):
    """The CPU kernels are serial functions of an item range run on a thread pool (a first call
    compiles in a third of the time of ``parallel=True``): any split of the items into pieces
    gives the same bits."""
    kernels = (conv._window_cpu, conv._forward_cpu, conv._grad_weight_cpu, conv._grad_input_cpu)
    assert not any(k.targetoptions.get("parallel") for k in kernels)
    monkeypatch.setattr(conv, "_PARALLEL_MIN_WORK", 0)
    g = torch.Generator().manual_seed(8)
    x = torch.randn(3, 6, 11, 9, generator=g, requires_grad=True)
    w = torch.randn(10, 3, 3, 2, generator=g, requires_grad=True)
    results = []
    for per_thread in (1, 7):
        monkeypatch.setattr(
            conv,
            "run_items",
            lambda k, n, *a, threads, per_thread=per_thread: run_items(
                k, n, *a, threads=max(threads, 2), per_thread=per_thread
            ),
        )
        y = im2win_conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
        results.append((y, *torch.autograd.grad(y, (x, w), torch.ones_like(y))))
    ref = F.conv2d(x, w, stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=2)
    torch.testing.assert_close(results[0][0], ref, rtol=1e-5, atol=1e-5)
    for a, b in zip(*results):
        assert torch.equal(a, b)


# ------------------------------------------------------------------------------ errors
def test_big_batches_run_in_image_slices_with_the_same_results(monkeypatch):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(7, 3, 9, 8, generator=g, requires_grad=True)
    w = torch.randn(4, 3, 3, 2, generator=g, requires_grad=True)
    b = torch.randn(4, generator=g, requires_grad=True)
    kw = dict(stride=(2, 1), padding=1)
    whole = im2win_conv2d(x, w, b, **kw)
    grads = torch.autograd.grad(whole.square().sum(), (x, w, b))
    per_image = 3 * whole.shape[2] * (8 + 2) * 3 * 4  # C * OH * WP * FH * itemsize
    monkeypatch.setattr(conv, "WINDOW_BUDGET_BYTES", 2 * per_image)  # slices of 2 images
    assert conv._image_slices(x, conv._geometry(x.shape, w.shape, (2, 1), 1, 1, 1)) == [
        (0, 2), (2, 4), (4, 6), (6, 7)
    ]  # fmt: skip
    sliced = im2win_conv2d(x, w, b, **kw)
    got = torch.autograd.grad(sliced.square().sum(), (x, w, b))
    assert torch.equal(sliced, whole)  # per-image outputs: the same bits
    assert torch.equal(got[0], grads[0]) and torch.equal(got[2], grads[2])
    torch.testing.assert_close(got[1], grads[1], rtol=1e-5, atol=1e-4)  # summed per slice
    torch.testing.assert_close(sliced, F.conv2d(x, w, b, **kw))
    # an expanded (stride-0) input is copied a slice at a time, never whole
    e = torch.randn(1, 3, 9, 8, generator=g).expand(7, 3, 9, 8)
    assert torch.equal(im2win_conv2d(e, w, b, **kw), im2win_conv2d(e.contiguous(), w, b, **kw))


def test_a_stride_beyond_the_input_reads_one_window_as_torch():
    # stride=2**62 overflowed int64 in the kernels' index products
    x = torch.randn(1, 2, 6, 6, requires_grad=True)
    w = torch.randn(3, 2, 3, 3)
    for stride in (2**62, (1, 2**40), 7):
        out = im2win_conv2d(x, w, stride=stride)
        ref = F.conv2d(x, w, stride=tuple(min(s, 8) for s in conv._pair("stride", stride, 1)))
        torch.testing.assert_close(out, ref)
        (g,) = torch.autograd.grad(out.sum(), x)
        (g_ref,) = torch.autograd.grad(ref.sum(), x)
        torch.testing.assert_close(g, g_ref)


def test_errors_name_the_argument():
    x, w = torch.randn(1, 4, 8, 8), torch.randn(6, 4, 3, 3)
    with pytest.raises(TypeError, match="input"):
        im2win_conv2d(x.numpy(), w)
    with pytest.raises(ValueError, match="input"):
        im2win_conv2d(torch.randn(8, 8), w)
    with pytest.raises(ValueError, match="weight"):
        im2win_conv2d(x, torch.randn(6, 4, 3))
    with pytest.raises(TypeError, match="weight dtype"):
        im2win_conv2d(x, w.double())
    with pytest.raises(ValueError, match="4 channels"):
        im2win_conv2d(x, torch.randn(6, 3, 3, 3))
    with pytest.raises(ValueError, match="groups=4"):
        im2win_conv2d(x, torch.randn(6, 1, 3, 3), groups=4)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        im2win_conv2d(x, w, groups=0)
    with pytest.raises(TypeError, match="groups"):
        im2win_conv2d(x, w, groups=1.0)
    with pytest.raises(ValueError, match="stride must be >= 1"):
        im2win_conv2d(x, w, stride=0)
    with pytest.raises(TypeError, match="stride"):
        im2win_conv2d(x, w, stride=(1, 2, 3))
    with pytest.raises(ValueError, match="padding must be >= 0"):
        im2win_conv2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="padding must be one of"):
        im2win_conv2d(x, w, padding="full")
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        im2win_conv2d(x, w, stride=2, padding="same")
    with pytest.raises(ValueError, match="dilation must be >= 1"):
        im2win_conv2d(x, w, dilation=(1, 0))
    with pytest.raises(ValueError, match="larger than the padded input"):
        im2win_conv2d(x, torch.randn(6, 4, 9, 3))
    with pytest.raises(ValueError, match="bias"):
        im2win_conv2d(x, w, torch.randn(5))
    with pytest.raises(TypeError, match="bias dtype"):
        im2win_conv2d(x, w, torch.randn(6, dtype=torch.float64))
    with pytest.raises(NotImplementedError, match="float16"):
        im2win_conv2d(x.half(), w.half())
    with pytest.raises(NotImplementedError, match="complex"):
        im2win_conv2d(x.to(torch.complex64), w.to(torch.complex64))
    with pytest.raises(TypeError, match="floating-point"):
        im2win_conv2d(x.long(), w.long())
    with pytest.raises(ValueError, match="input_shape"):
        window_shape((4, 8, 8), 3)
    with pytest.raises(ValueError, match="kernel_size must be >= 1"):
        im2win(x, 0)


# ------------------------------------------------------------------------------ Triton
try:
    import triton
except ImportError:  # the gpu extra is not installed: the Triton tests skip
    triton = None
needs_triton = pytest.mark.skipif(triton is None, reason="needs triton (the gpu extra)")


def _triton_case(dtype, device, *, shape, wshape, seed, **kw):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g).to(dtype).to(device).requires_grad_()
    w = torch.randn(wshape, generator=g).to(dtype).to(device).requires_grad_()
    b = torch.randn(wshape[0], generator=g).to(dtype).to(device).requires_grad_()
    y = im2win_conv2d(x, w, b, **kw)
    gy = torch.randn(y.shape, generator=g).to(dtype).to(device)
    gx, gw, gb = torch.autograd.grad(y, (x, w, b), gy)
    xd, wd, bd = (t.detach().double().requires_grad_() for t in (x, w, b))
    ref = F.conv2d(xd, wd, bd, **kw)
    rx, rw, rb = torch.autograd.grad(ref, (xd, wd, bd), gy.double())
    _check(y, ref, dtype, math.prod(wshape[1:]))
    _check(gx, rx, dtype, wshape[0] * math.prod(wshape[2:]))
    _check(gw, rw, dtype, math.prod(y.shape) // y.shape[1])
    _check(gb, rb, dtype, math.prod(y.shape) // y.shape[1])


_TRITON_CASES = [
    dict(shape=(2, 3, 6, 7), wshape=(5, 3, 3, 2), stride=1, padding=1),
    dict(
        shape=(1, 4, 9, 8), wshape=(6, 2, 3, 3), stride=2, padding=(1, 0), dilation=(2, 1), groups=2
    ),
    dict(shape=(1, 2, 11, 9), wshape=(3, 2, 5, 3), stride=(4, 2), padding=2),
]


@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_triton_kernels(dtype, device):
    with conv._force_backend("triton"):
        for seed, case in enumerate(_TRITON_CASES):
            _triton_case(dtype, device, seed=seed, **case)


@needs_triton
def test_triton_window_matches_numba(device):
    x = torch.randn(2, 3, 10, 7)
    want = im2win(x, (3, 2), stride=2, padding=(1, 2), dilation=(2, 1))
    with conv._force_backend("triton"):
        got = im2win(x.to(device), (3, 2), stride=2, padding=(1, 2), dilation=(2, 1))
    assert torch.equal(got.cpu(), want)


_AOT = r"""
import json, re, sys
import triton
import triton.language as tl
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from gnnsys.ops import _conv_triton as ct

out = {}
for ty, mode in (("fp32", ct._MODE_F32_IEEE), ("bf16", ct._MODE_HALF)):
    const = dict(HAS_BIAS=True, MODE=mode, ACC=tl.float32, BM=128, BN=64, BK=32)
    types = {k: "constexpr" for k in const}
    types.update({p: "*" + ty for p in ("win", "wt", "bias", "out")})
    sig = {a: types.get(a, "i32") for a in ct._forward_kernel.arg_names}
    src = ASTSource(fn=ct._forward_kernel, signature=sig, constexprs=const)
    opts = {"num_warps": 8, "num_stages": 3}
    ptx = triton.compile(src, target=GPUTarget("cuda", 80, 32), options=opts).asm["ptx"]
    out[ty] = sorted(set(re.findall(r"mma\.sync\.aligned\.[a-z0-9.]+", ptx)))
print(json.dumps(out))
"""


@needs_triton
def test_forward_kernel_compiles_for_cuda(uninterpreted):
    """Compile the forward GEMM ahead of time for sm_80 (no GPU needed; a subprocess without the
    interpreter): fp32 must not use tensor cores (that would be TF32), bf16 must."""
    import json
    import os

    if int(triton.__version__.split(".")[0]) < 3:
        pytest.skip("ahead-of-time compile API of Triton 3")
    pytest.importorskip("triton.backends.nvidia")
    fusion = os.environ.get("TRITON_DEFAULT_FP_FUSION", "1")
    res = uninterpreted(_AOT, 300, TRITON_DEFAULT_FP_FUSION=fusion)
    assert res.returncode == 0, res.stderr[-2000:]
    mma = json.loads(res.stdout.strip().splitlines()[-1])
    assert mma["fp32"] == []
    assert mma["bf16"] and all("bf16" in m for m in mma["bf16"])


@pytest.mark.gpu
@needs_triton
@pytest.mark.parametrize("layer", [1, 4, 8, 12])
def test_gpu_paper_layers(layer):
    c, h, w, k, f, s = PAPER_LAYERS[layer - 1]
    g = torch.Generator().manual_seed(layer)
    x = torch.randn(2, c, h, w, generator=g).cuda()
    wt = (torch.randn(k, c, f, f, generator=g) / math.sqrt(c * f * f)).cuda()
    y = im2win_conv2d(x, wt, stride=s)
    _check(y, _ref(x, wt, None, s), torch.float32, c * f * f)
    for dtype in (torch.float16, torch.bfloat16):
        xh, wh = x.to(dtype), wt.to(dtype)
        _check(im2win_conv2d(xh, wh, stride=s), _ref(xh, wh, None, s), dtype, c * f * f)


@pytest.mark.gpu
@needs_triton
def test_gpu_random_shapes_and_gradients():
    g = torch.Generator().manual_seed(7)
    for _ in range(20):
        _run_case(_random_case(g), torch.float32, g, device="cuda")
    for seed, case in enumerate(_TRITON_CASES):
        _triton_case(torch.float32, torch.device("cuda"), seed=seed, **case)


_NO_GPU_CONV = """
import torch
from gnnsys.ops import conv
with conv._force_backend("triton"):
    try:
        conv.im2win_conv2d(torch.randn(1, 1, 4, 4), torch.randn(1, 1, 3, 3))
    except RuntimeError as err:
        print("ERROR:", err)
"""


@needs_triton
def test_triton_backend_without_gpu_or_interpreter_says_so(uninterpreted):
    """No TRITON_INTERPRET, no GPU visible (a child process): forcing the Triton backend is a
    clear error before any launch, not Triton's "0 active drivers"."""
    res = uninterpreted(_NO_GPU_CONV, 300, CUDA_VISIBLE_DEVICES="")
    want = "ERROR: im2win_conv2d's Triton backend needs a CUDA device; none is available"
    assert want in res.stdout, res.stdout + res.stderr[-3000:]
