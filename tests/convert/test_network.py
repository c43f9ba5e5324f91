import numpy as np
import pytest

from l4theory.convert.network import (
    AvgPool2d,
    Conv2d,
    Flatten,
    Linear,
    Network,
    ReLU,
    accuracy,
    avgpool2d,
    conv2d,
)


def slow_conv(x, w, b, stride, pads):
    t, left, bot, r = pads
    xp = np.pad(x, ((0, 0), (0, 0), (t, bot), (left, r)))
    n, c, h, wd = xp.shape
    co, _, kh, kw = w.shape
    ho, wo = (h - kh) // stride[0] + 1, (wd - kw) // stride[1] + 1
    out = np.zeros((n, co, ho, wo))
    for s in range(n):
        for o in range(co):
            for i in range(ho):
                for j in range(wo):
                    patch = xp[s, :, i * stride[0]:i * stride[0] + kh, j * stride[1]:j * stride[1] + kw]
                    out[s, o, i, j] = (patch * w[o]).sum() + (0 if b is None else b[o])
    return out


@pytest.mark.parametrize("stride, pads", [((1, 1), (0, 0, 0, 0)), ((2, 1), (1, 1, 1, 1)),
                                          ((2, 3), (0, 2, 1, 0)), ((1, 2), (2, 0, 2, 0))])
def test_conv2d_matches_slow_reference(stride, pads):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 3, 7, 8))
    w = rng.normal(size=(4, 3, 3, 2))
    b = rng.normal(size=4)
    np.testing.assert_allclose(conv2d(x, w, b, stride, pads), slow_conv(x, w, b, stride, pads),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel, stride", [((2, 2), None), ((3, 2), (1, 2)), ((2, 2), (1, 1))])
def test_avgpool_matches_slow_reference(kernel, stride):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 7, 6))
    s = kernel if stride is None else stride
    ho, wo = (7 - kernel[0]) // s[0] + 1, (6 - kernel[1]) // s[1] + 1
    ref = np.array([[[[x[n, c, i * s[0]:i * s[0] + kernel[0], j * s[1]:j * s[1] + kernel[1]].mean()
                       for j in range(wo)] for i in range(ho)] for c in range(3)] for n in range(2)])
    np.testing.assert_allclose(avgpool2d(x, kernel, stride), ref, rtol=1e-12)


def small_net(rng, bias=True):
    return Network((2, 8, 8), [
        Conv2d(rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3) if bias else None,
               stride=1, padding=1, name="c1"),
        ReLU(), AvgPool2d(2),
        Conv2d(rng.normal(size=(4, 3, 3, 3)), None, stride=2, padding=(1, 0), name="c2"),
        ReLU(), Flatten(),
        Linear(rng.normal(size=(5, 4 * 2 * 1)), rng.normal(size=5) if bias else None, name="fc"),
    ])


def test_shapes_and_forward_vs_reference():
    rng = np.random.default_rng(2)
    net = small_net(rng)
    assert net.shapes == [(2, 8, 8), (3, 8, 8), (3, 8, 8), (3, 4, 4), (4, 2, 1), (4, 2, 1),
                          (8,), (5,)]
    assert net.weight_layers == [0, 3, 6] and net.spiking_layers == [0, 3]
    x = rng.normal(size=(5, 2, 8, 8))
    c1, c2, fc = net.layers[0], net.layers[3], net.layers[6]
    h = np.maximum(slow_conv(x, c1.weight, c1.bias, (1, 1), (1, 1, 1, 1)), 0)
    h = h.reshape(5, 3, 4, 2, 4, 2).mean(axis=(3, 5))
    h = np.maximum(slow_conv(h, c2.weight, None, (2, 2), (1, 0, 1, 0)), 0).reshape(5, -1)
    ref = h @ fc.weight.T + fc.bias
    np.testing.assert_allclose(net.forward(x), ref, rtol=1e-10)
    # batching does not change the result
    np.testing.assert_allclose(net.forward(x, batch_size=2), net.forward(x, batch_size=5),
                               rtol=1e-12, atol=1e-12)
    # per-layer outputs: the pre-activation of layer 0 is the conv output
    rows, outs = next(net.iter_layers(x, batch_size=5))
    assert rows == slice(0, 5) and len(outs) == len(net.layers)
    np.testing.assert_allclose(outs[0], slow_conv(x, c1.weight, c1.bias, (1, 1), (1, 1, 1, 1)))


def test_float32_forward_stays_float32():
    rng = np.random.default_rng(3)
    net = Network((4,), [Linear(rng.normal(size=(3, 4)).astype(np.float32))])
    _, outs = next(net.iter_layers(np.ones((2, 4), np.float32)))
    assert outs[-1].dtype == np.float32


@pytest.mark.parametrize("layers, msg", [
    ([Conv2d(np.zeros((3, 5, 3, 3)))], r"layer 0 \(conv2d 'conv'\): its weight \(3, 5, 3, 3\) "
                                       r"expects 5 input channels, receives shape \(2, 8, 8\)"),
    ([Flatten(), Linear(np.zeros((3, 100)))], r"layer 1 .*expects 100 inputs, receives 128.*"
                                              r"layer 0 \(flatten"),
    ([Linear(np.zeros((3, 128)))], "add a flatten layer"),
    ([AvgPool2d(16)], "larger than the input"),
    ([Conv2d(np.zeros((3, 2, 9, 9)))], "larger than the padded input"),
])
def test_shape_mismatch_messages(layers, msg):
    with pytest.raises(ValueError, match=msg):
        Network((2, 8, 8), layers)


def test_layer_validation():
    with pytest.raises(ValueError, match="bias has 2 entries"):
        Linear(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ValueError, match="4-D"):
        Conv2d(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="NaN or infinite"):
        Linear(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="stride"):
        Conv2d(np.zeros((1, 1, 1, 1)), stride=0)
    with pytest.raises(ValueError, match="padding"):
        Conv2d(np.zeros((1, 1, 1, 1)), padding=(1, 2, 3))
    with pytest.raises(ValueError, match="at least one layer"):
        Network((1,), [])


def test_input_checks_and_accuracy():
    net = Network((2,), [Linear(np.eye(2))])
    with pytest.raises(ValueError, match="uint8"):
        net.forward(np.zeros((1, 2), np.uint8))
    with pytest.raises(ValueError, match="expected"):
        net.forward(np.zeros((1, 3)))
    assert net.accuracy(np.array([[1.0, 0], [0, 1], [1, 0]]), np.array([0, 1, 1])) == \
        pytest.approx(2 / 3)
    with pytest.raises(ValueError):
        accuracy(np.zeros((2, 2)), np.zeros(3))
