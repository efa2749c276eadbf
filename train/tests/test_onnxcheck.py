"""train.onnxcheck, operator by operator: every operator of the native engine
on a one-node graph, against numpy or an explicit torch computation of the
ONNX specification; and its list against docs/BUNDLE.md."""
import os
import re

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, mapping, numpy_helper

from train import onnxcheck

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RNG = np.random.default_rng(7)


def f32(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def pos(*shape):
    return (RNG.random(shape) + 0.1).astype(np.float32)


def i64(v):
    return np.asarray(v, dtype=np.int64)


def one_node(op, inputs, attrs=None, n_out=1):
    """A graph of one node: inputs is a list of (name, array or None); arrays
    named "c:..." become initializers, the others graph inputs."""
    names, graph_inputs, inits, feeds = [], [], [], {}
    for name, arr in inputs:
        if arr is None:
            names.append("")
            continue
        names.append(name)
        if name.startswith("c:"):
            inits.append(numpy_helper.from_array(arr, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype],
                                                              list(arr.shape)))
            feeds[name] = torch.from_numpy(arr.copy())
    outs = [f"y{i}" for i in range(n_out)]
    node = helper.make_node(op, names, outs, **(attrs or {}))
    g = helper.make_graph([node], "g", graph_inputs, [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None)
                                                      for o in outs], inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    return onnxcheck.run_model(model, feeds)["y0"]


X = f32(2, 3, 5, 6)
W = f32(4, 3, 3, 3)
B = f32(4)
P = pos(2, 3, 4)


def npsig(v):
    return 1 / (1 + np.exp(-v))


def erf(v):
    return np.vectorize(__import__("math").erf)(v.astype(np.float64))


def conv_ref(x, w, b, pads, stride, dil=1, groups=1):
    """A direct loop over output pixels (pads: top, left, bottom, right)."""
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    oh = (h - (kh - 1) * dil - 1) // stride + 1
    ow = (wd - (kw - 1) * dil - 1) // stride + 1
    y = np.zeros((n, o, oh, ow), np.float64)
    og = o // groups
    for oc in range(o):
        g = oc // og
        for i in range(oh):
            for j in range(ow):
                patch = x[:, g * cg:(g + 1) * cg, i * stride:i * stride + (kh - 1) * dil + 1:dil,
                          j * stride:j * stride + (kw - 1) * dil + 1:dil]
                y[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3)) + (b[oc] if b is not None else 0)
    return y


def conv_transpose_ref(x, w, b, stride, pads, outpad):
    n, c, h, wd = x.shape
    _, o, kh, kw = w.shape
    full = np.zeros((n, o, (h - 1) * stride + kh + outpad, (wd - 1) * stride + kw + outpad))
    for i in range(h):
        for j in range(wd):
            full[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw] += np.einsum("nc,cokl->nokl", x[:, :, i, j], w)
    y = full[:, :, pads[0]:full.shape[2] - pads[2], pads[1]:full.shape[3] - pads[3]]
    return y + b.reshape(1, -1, 1, 1)


def maxpool_ref(x, k, s, p):
    x = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), constant_values=-np.inf)
    oh, ow = (x.shape[2] - k) // s + 1, (x.shape[3] - k) // s + 1
    return np.stack([np.stack([x[:, :, i * s:i * s + k, j * s:j * s + k].max(axis=(2, 3)) for j in range(ow)], -1)
                     for i in range(oh)], -2)


def avgpool_ref(x, k, s, p, include_pad):
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    ones = np.pad(np.ones_like(x), ((0, 0), (0, 0), (p, p), (p, p)))
    oh, ow = (xp.shape[2] - k) // s + 1, (xp.shape[3] - k) // s + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * s:i * s + k, j * s:j * s + k].sum(axis=(2, 3))
            cnt = k * k if include_pad else ones[:, :, i * s:i * s + k, j * s:j * s + k].sum(axis=(2, 3))
            out[:, :, i, j] = win / cnt
    return out


CT_W, CT_B = f32(3, 2, 3, 3), f32(2)
D, E, MY, SY = pos(3, 1, 1), f32(3, 1), f32(6), f32(5, 1)
GA, GB, GC = f32(2, 5), f32(4, 5), f32(4)
MA, MB = f32(2, 3, 5), f32(5, 4)
SQZ, U, WX, WY = f32(2, 1, 3, 1), f32(2, 3), f32(2, 3), f32(1)
COND = np.array([[True, False, True]])
SQ = np.array([[0.4, 1.6, -2.5], [-0.5, 3.5, 2.2]], np.float32)
CASES = {
    "Abs": (lambda: one_node("Abs", [("x", X)]), lambda: np.abs(X)),
    "Add": (lambda: one_node("Add", [("x", X), ("c:b", f32(1, 3, 1, 1) * 0 + 2)]), lambda: X + 2),
    "AveragePool": (lambda: one_node("AveragePool", [("x", X)], dict(kernel_shape=[3, 3], strides=[2, 2],
                                                                     pads=[1, 1, 1, 1])),
                    lambda: avgpool_ref(X, 3, 2, 1, False)),
    "BatchNormalization": (lambda: one_node("BatchNormalization", [("x", X), ("c:s", np.full(3, 2, np.float32)),
                                                                   ("c:b", np.ones(3, np.float32)),
                                                                   ("c:m", np.full(3, 0.5, np.float32)),
                                                                   ("c:v", np.full(3, 4, np.float32))], dict(epsilon=0.0)),
                           lambda: (X - 0.5) / 2 * 2 + 1),
    "Cast": (lambda: one_node("Cast", [("x", SQ)], dict(to=TensorProto.INT64)), lambda: SQ.astype(np.int64)),
    "Ceil": (lambda: one_node("Ceil", [("x", SQ)]), lambda: np.ceil(SQ)),
    "Clip": (lambda: one_node("Clip", [("x", X), ("c:lo", np.float32(-0.5)), ("c:hi", np.float32(0.5))]),
             lambda: np.clip(X, -0.5, 0.5)),
    "Concat": (lambda: one_node("Concat", [("x", X), ("c:z", X[:, :1] * 3)], dict(axis=1)),
               lambda: np.concatenate([X, X[:, :1] * 3], 1)),
    "Constant": (lambda: one_node("Constant", [], dict(value=numpy_helper.from_array(SQ))), lambda: SQ),
    "ConstantOfShape": (lambda: one_node("ConstantOfShape", [("s", i64([2, 3]))],
                                         dict(value=numpy_helper.from_array(np.array([1.5], np.float32)))),
                        lambda: np.full((2, 3), 1.5, np.float32)),
    "Conv": (lambda: one_node("Conv", [("x", X), ("c:w", W), ("c:b", B)], dict(pads=[1, 0, 2, 1], strides=[2, 2])),
             lambda: conv_ref(X, W, B, [1, 0, 2, 1], 2)),
    "ConvTranspose": (lambda: one_node("ConvTranspose", [("x", X), ("c:w", CT_W), ("c:b", CT_B)],
                                       dict(strides=[2, 2], pads=[1, 1, 0, 0], output_padding=[1, 1])),
                      lambda: conv_transpose_ref(X, CT_W, CT_B, 2, [1, 1, 0, 0], 1)),
    "Div": (lambda: one_node("Div", [("x", X), ("c:d", D)]), lambda: X / D),
    "Dropout": (lambda: one_node("Dropout", [("x", X)]), lambda: X),
    "Equal": (lambda: one_node("Equal", [("x", i64([1, 2, 3])), ("c:y", i64([1, 0, 3]))]),
              lambda: np.array([True, False, True])),
    "Erf": (lambda: one_node("Erf", [("x", X)]), lambda: erf(X)),
    "Exp": (lambda: one_node("Exp", [("x", X)]), lambda: np.exp(X)),
    "Expand": (lambda: one_node("Expand", [("x", E), ("c:s", i64([2, 1, 4]))]), lambda: np.broadcast_to(E, (2, 3, 4))),
    "Flatten": (lambda: one_node("Flatten", [("x", X)], dict(axis=2)), lambda: X.reshape(6, 30)),
    "Floor": (lambda: one_node("Floor", [("x", SQ)]), lambda: np.floor(SQ)),
    "Gather": (lambda: one_node("Gather", [("x", X), ("c:i", i64([[2, -1], [0, 0]]))], dict(axis=3)),
               lambda: X[:, :, :, [[2, 5], [0, 0]]]),
    "Gemm": (lambda: one_node("Gemm", [("a", GA), ("c:b", GB), ("c:c", GC)], dict(transB=1, alpha=0.5, beta=2.0)),
             lambda: 0.5 * GA.astype(np.float64) @ GB.T + 2 * GC),
    "GlobalAveragePool": (lambda: one_node("GlobalAveragePool", [("x", X)]), lambda: X.mean(axis=(2, 3), keepdims=True)),
    "GlobalMaxPool": (lambda: one_node("GlobalMaxPool", [("x", X)]), lambda: X.max(axis=(2, 3), keepdims=True)),
    "Greater": (lambda: one_node("Greater", [("x", SQ), ("c:y", np.float32(0.5))]), lambda: SQ > 0.5),
    "HardSigmoid": (lambda: one_node("HardSigmoid", [("x", X)], dict(alpha=0.3, beta=0.4)),
                    lambda: np.clip(0.3 * X + 0.4, 0, 1)),
    "HardSwish": (lambda: one_node("HardSwish", [("x", X * 4)]), lambda: X * 4 * np.clip(X * 4 / 6 + 0.5, 0, 1)),
    "Identity": (lambda: one_node("Identity", [("x", X)]), lambda: X),
    "LeakyRelu": (lambda: one_node("LeakyRelu", [("x", X)], dict(alpha=0.2)), lambda: np.where(X > 0, X, 0.2 * X)),
    "Less": (lambda: one_node("Less", [("x", SQ), ("c:y", np.float32(0.5))]), lambda: SQ < 0.5),
    "Log": (lambda: one_node("Log", [("x", P)]), lambda: np.log(P)),
    "MatMul": (lambda: one_node("MatMul", [("a", MA), ("c:b", MB)]), lambda: MA.astype(np.float64) @ MB),
    "Max": (lambda: one_node("Max", [("x", X), ("c:y", np.float32(0.1)), ("c:z", X[:1] * 0.5)]),
            lambda: np.maximum(np.maximum(X, 0.1), X[:1] * 0.5)),
    "MaxPool": (lambda: one_node("MaxPool", [("x", X)], dict(kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])),
                lambda: maxpool_ref(X, 3, 2, 1)),
    "Min": (lambda: one_node("Min", [("x", X), ("c:y", np.float32(0.1))]), lambda: np.minimum(X, 0.1)),
    "Mul": (lambda: one_node("Mul", [("x", X), ("c:y", MY)]), lambda: X * MY),
    "Neg": (lambda: one_node("Neg", [("x", X)]), lambda: -X),
    "Not": (lambda: one_node("Not", [("x", np.array([True, False]))]), lambda: np.array([False, True])),
    "Pad": (lambda: one_node("Pad", [("x", X), ("c:p", i64([0, 0, 1, -1, 0, 1, 2, 0])), ("c:v", np.float32(3))]),
            lambda: np.pad(X[:, :, :, 1:], ((0, 0), (0, 1), (1, 2), (0, 0)), constant_values=3)),
    "Pow": (lambda: one_node("Pow", [("x", P), ("c:e", np.float32(2.5))]), lambda: P ** 2.5),
    "Range": (lambda: one_node("Range", [("a", i64(2)), ("c:b", i64(9)), ("c:d", i64(3))]), lambda: i64([2, 5, 8])),
    "Reciprocal": (lambda: one_node("Reciprocal", [("x", P)]), lambda: 1 / P),
    "ReduceMax": (lambda: one_node("ReduceMax", [("x", X)], dict(axes=[1, -1], keepdims=0)), lambda: X.max(axis=(1, 3))),
    "ReduceMean": (lambda: one_node("ReduceMean", [("x", X)], dict(axes=[2, 3])), lambda: X.mean(axis=(2, 3), keepdims=True)),
    "ReduceSum": (lambda: one_node("ReduceSum", [("x", X), ("c:a", i64([1]))], dict(keepdims=0)), lambda: X.sum(axis=1)),
    "Relu": (lambda: one_node("Relu", [("x", X)]), lambda: np.maximum(X, 0)),
    "Reshape": (lambda: one_node("Reshape", [("x", X), ("c:s", i64([0, -1, 2]))]), lambda: X.reshape(2, 45, 2)),
    "Resize": (lambda: one_node("Resize", [("x", X), ("", None), ("c:s", np.array([1, 1, 2, 2], np.float32))],
                                dict(mode="linear", coordinate_transformation_mode="half_pixel")),
               lambda: F.interpolate(torch.from_numpy(X), scale_factor=2.0, mode="bilinear",
                                     align_corners=False).numpy()),
    "Round": (lambda: one_node("Round", [("x", SQ)]), lambda: np.round(SQ)),  # half to even, as ONNX says
    "Shape": (lambda: one_node("Shape", [("x", X)]), lambda: i64([2, 3, 5, 6])),
    "Sigmoid": (lambda: one_node("Sigmoid", [("x", X)]), lambda: npsig(X)),
    "Slice": (lambda: one_node("Slice", [("x", X), ("c:s", i64([-1, 1])), ("c:e", i64([-1000, 5])),
                                        ("c:a", i64([3, 2])), ("c:t", i64([-2, 2]))]),
              lambda: X[:, :, 1:5:2, ::-2]),
    "Softmax": (lambda: one_node("Softmax", [("x", X)], dict(axis=1)),
                lambda: np.exp(X) / np.exp(X).sum(axis=1, keepdims=True)),
    "Sqrt": (lambda: one_node("Sqrt", [("x", P)]), lambda: np.sqrt(P)),
    "Squeeze": (lambda: one_node("Squeeze", [("x", SQZ), ("c:a", i64([-1]))]), lambda: SQZ.reshape(2, 1, 3)),
    "Sub": (lambda: one_node("Sub", [("x", X), ("c:y", SY)]), lambda: X - SY),
    "Tanh": (lambda: one_node("Tanh", [("x", X)]), lambda: np.tanh(X)),
    "Transpose": (lambda: one_node("Transpose", [("x", X)], dict(perm=[0, 2, 3, 1])), lambda: X.transpose(0, 2, 3, 1)),
    "Unsqueeze": (lambda: one_node("Unsqueeze", [("x", U), ("c:a", i64([0, -1]))]), lambda: U.reshape(1, 2, 3, 1)),
    "Where": (lambda: one_node("Where", [("c", COND), ("x", WX), ("c:y", WY)]), lambda: np.where(COND, WX, WY)),
}


@pytest.mark.parametrize("op", sorted(CASES))
def test_operator(op):
    run, expect = CASES[op]
    got = run()
    want = np.asarray(expect())
    assert tuple(got.shape) == want.shape, (op, tuple(got.shape), want.shape)
    g = got.numpy()
    if want.dtype == bool or np.issubdtype(want.dtype, np.integer):
        assert np.array_equal(g, want), op
    else:
        assert np.allclose(g.astype(np.float64), want, rtol=1e-5, atol=1e-5), (op, np.abs(g - want).max())


def docs_native_ops():
    """The operator list of docs/BUNDLE.md (the backticked names after its
    'native-ops' marker)."""
    text = open(os.path.join(ROOT, "docs", "BUNDLE.md")).read()
    block = text.split("<!-- native-ops -->", 1)[1].split("<!-- /native-ops -->", 1)[0]
    return set(re.findall(r"`([A-Za-z]+)`", block))


def test_every_native_operator_is_tested_and_documented():
    assert set(CASES) == set(onnxcheck.NATIVE_OPS)
    assert docs_native_ops() == set(onnxcheck.NATIVE_OPS)


def test_an_attribute_the_native_engine_rejects_is_rejected():
    with pytest.raises(NotImplementedError, match="Pad mode"):
        one_node("Pad", [("x", X), ("c:p", i64([0] * 8))], dict(mode="reflect"))
    with pytest.raises(NotImplementedError, match="operator Sin"):
        one_node("Sin", [("x", X)])
