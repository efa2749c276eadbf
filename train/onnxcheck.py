"""A small ONNX interpreter (in torch) for every operator the Go native
engine implements (NATIVE_OPS, listed in docs/BUNDLE.md), so the exporter can
check that each exported graph computes what the PyTorch module computes
before the deployed engines judge it (train/gate.py). It follows the ONNX
operator specifications (opset 13 forms), independently of torch.onnx's
export: e.g. Resize's coordinate transformations are written out from the
spec. Attribute values the native engine rejects are NotImplementedError
here too.
"""
from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

# Every operator the native engine (models/native) plans; docs/BUNDLE.md lists
# the same names and tests hold the three lists equal.
NATIVE_OPS = frozenset("""
Abs Add AveragePool BatchNormalization Cast Ceil Clip Concat Constant ConstantOfShape Conv ConvTranspose
Div Dropout Equal Erf Exp Expand Flatten Floor Gather Gemm GlobalAveragePool GlobalMaxPool Greater
HardSigmoid HardSwish Identity LeakyRelu Less Log MatMul Max MaxPool Min Mul Neg Not Pad Pow Range
Reciprocal ReduceMax ReduceMean ReduceSum Relu Reshape Resize Round Shape Sigmoid Slice Softmax Sqrt
Squeeze Sub Tanh Transpose Unsqueeze Where
""".split())

_DTYPES = {onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.DOUBLE: torch.float64,
           onnx.TensorProto.FLOAT16: torch.float16, onnx.TensorProto.INT64: torch.int64,
           onnx.TensorProto.INT32: torch.int32, onnx.TensorProto.INT8: torch.int8,
           onnx.TensorProto.UINT8: torch.uint8, onnx.TensorProto.BOOL: torch.bool}


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _s(a, key, default):
    v = a.get(key, default)
    return v.decode() if isinstance(v, bytes) else v


def _tensor(t):
    return torch.from_numpy(numpy_helper.to_array(t).copy())


def _resize(x, scales, mode, ctm, nearest_mode):
    out = x
    for axis in range(x.dim()):
        s = float(scales[axis])
        if s == 1.0:
            continue
        n_in = x.shape[axis]
        n_out = int(np.floor(n_in * s))
        o = torch.arange(n_out, dtype=torch.float64)
        if ctm == "asymmetric":
            src = o / s
        elif ctm in ("half_pixel", "pytorch_half_pixel"):
            src = (o + 0.5) / s - 0.5
            if ctm == "pytorch_half_pixel" and n_out == 1:
                src = torch.zeros_like(o)
        elif ctm == "align_corners":
            src = o * (n_in - 1) / max(n_out - 1, 1)
        elif ctm == "tf_half_pixel_for_nn":
            src = (o + 0.5) / s
        else:
            raise NotImplementedError(f"Resize coordinate_transformation_mode {ctm}")
        if mode == "nearest":
            rounding = {"floor": torch.floor, "ceil": torch.ceil,
                        "round_prefer_floor": lambda v: torch.ceil(v - 0.5),
                        "round_prefer_ceil": lambda v: torch.floor(v + 0.5)}
            if nearest_mode not in rounding:
                raise NotImplementedError(f"Resize nearest_mode {nearest_mode}")
            idx = torch.clamp(rounding[nearest_mode](src), 0, n_in - 1).long()
            out = out.index_select(axis, idx)
        elif mode == "linear":
            src = torch.clamp(src, 0, n_in - 1)
            lo = torch.floor(src).long()
            hi = torch.clamp(lo + 1, max=n_in - 1)
            w = (src - lo.double()).to(out.dtype)
            shape = [1] * out.dim()
            shape[axis] = n_out
            w = w.view(shape)
            out = out.index_select(axis, lo) * (1 - w) + out.index_select(axis, hi) * w
        else:
            raise NotImplementedError(f"Resize mode {mode}")
    return out


def _spatial_pads(a, n):
    pads = list(a.get("pads", [0] * (2 * n)))
    if _s(a, "auto_pad", "NOTSET") not in ("NOTSET", "VALID"):
        raise NotImplementedError(f"auto_pad {_s(a, 'auto_pad', '')}")
    return pads[:n], pads[n:]


def _torch_pad(begin, end):
    """ONNX begin/end pads of the trailing axes as F.pad's argument (last axis first)."""
    p = []
    for b, e in zip(reversed(begin), reversed(end)):
        p += [b, e]
    return p


def _conv(x, w, b, a):
    n = x.dim() - 2
    begin, end = _spatial_pads(a, n)
    x = F.pad(x, _torch_pad(begin, end))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[n]
    return conv(x, w, b, stride=a.get("strides", [1] * n), dilation=a.get("dilations", [1] * n),
                groups=a.get("group", 1))


def _conv_transpose(x, w, b, a):
    n = x.dim() - 2
    if n != 2:
        raise NotImplementedError("ConvTranspose of other than 2-D inputs")
    if "output_shape" in a:
        raise NotImplementedError("ConvTranspose output_shape")
    begin, end = _spatial_pads(a, n)
    outpad = a.get("output_padding", [0] * n)
    y = F.conv_transpose2d(x, w, None, stride=a.get("strides", [1] * n), groups=a.get("group", 1),
                           dilation=a.get("dilations", [1] * n))
    y = F.pad(y, _torch_pad([0] * n, outpad))
    y = y[:, :, begin[0]:y.shape[2] - end[0], begin[1]:y.shape[3] - end[1]]
    if b is not None:
        y = y + b.view(1, -1, 1, 1)
    return y


def _pool(op, x, a):
    n = x.dim() - 2
    if n != 2:
        raise NotImplementedError(f"{op} of other than 2-D inputs")
    k = a["kernel_shape"]
    begin, end = _spatial_pads(a, n)
    strides = a.get("strides", [1] * n)
    ceil = bool(a.get("ceil_mode", 0))
    dil = a.get("dilations", [1] * n)
    if begin != end or any(p > kk // 2 for p, kk in zip(begin, k)):
        raise NotImplementedError(f"{op} with asymmetric or over-half-kernel pads {begin + end}")
    if op == "MaxPool":
        return F.max_pool2d(x, k, strides, begin, dilation=dil, ceil_mode=ceil)
    if any(d != 1 for d in dil):
        raise NotImplementedError("AveragePool dilations")
    return F.avg_pool2d(x, k, strides, begin, ceil_mode=ceil, count_include_pad=bool(a.get("count_include_pad", 0)))


def _axes(a, x, inputs, k=1):
    """Reduce/Squeeze axes: the attribute, or input k (opset 13), normalised."""
    axes = a.get("axes")
    if axes is None and len(inputs) > k and inputs[k] is not None:
        axes = inputs[k].tolist()
    if axes is None:
        return None
    return sorted(ax % x.dim() for ax in axes)


def _reduce(op, x, a, inputs):
    axes = _axes(a, x, inputs)
    keep = bool(a.get("keepdims", 1))
    if axes is None or axes == []:
        if op == "ReduceSum" and a.get("noop_with_empty_axes", 0):
            return x
        axes = list(range(x.dim()))
    fn = {"ReduceMean": lambda t: t.mean(dim=axes, keepdim=keep), "ReduceSum": lambda t: t.sum(dim=axes, keepdim=keep),
          "ReduceMax": lambda t: t.amax(dim=axes, keepdim=keep)}[op]
    return fn(x)


def _slice(x, starts, ends, axes, steps):
    starts, ends = starts.tolist(), ends.tolist()
    axes = axes.tolist() if axes is not None else list(range(len(starts)))
    steps = steps.tolist() if steps is not None else [1] * len(starts)
    for s, e, ax, st in zip(starts, ends, axes, steps):
        ax %= x.dim()
        idx = torch.tensor(list(range(*slice(s, e, st).indices(x.shape[ax]))), dtype=torch.long)
        x = x.index_select(ax, idx)
    return x


def _reshape(x, shape, allowzero):
    shape = shape.tolist()
    if not allowzero:
        shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
    return x.reshape(shape)


def _pad(x, pads, value, mode):
    if mode != "constant":
        raise NotImplementedError(f"Pad mode {mode}")
    pads = pads.tolist()
    n = x.dim()
    v = float(value.reshape(-1)[0]) if value is not None and value.numel() else 0.0
    return F.pad(x, _torch_pad(pads[:n], pads[n:]), value=v)


def _constant(a):
    if "value" in a:
        return _tensor(a["value"])
    if "value_float" in a:
        return torch.tensor(a["value_float"], dtype=torch.float32)
    if "value_floats" in a:
        return torch.tensor(a["value_floats"], dtype=torch.float32)
    if "value_int" in a:
        return torch.tensor(a["value_int"], dtype=torch.int64)
    if "value_ints" in a:
        return torch.tensor(a["value_ints"], dtype=torch.int64)
    raise NotImplementedError("Constant without a value, value_float(s) or value_int(s)")


def _div(x, y):
    if x.dtype.is_floating_point or y.dtype.is_floating_point:
        return torch.div(x, y)
    return torch.div(x, y, rounding_mode="trunc")


_UNARY = {
    "Relu": torch.relu, "Sigmoid": torch.sigmoid, "Sqrt": torch.sqrt, "Exp": torch.exp,
    "Round": torch.round, "Neg": torch.neg, "Abs": torch.abs, "Tanh": torch.tanh, "Floor": torch.floor,
    "Ceil": torch.ceil, "Erf": torch.erf, "Reciprocal": torch.reciprocal, "Log": torch.log,
    "Not": torch.logical_not,
    "HardSwish": lambda x: x * torch.clamp(x / 6 + 0.5, 0, 1),
}
_BINARY = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": _div, "Pow": torch.pow,
           "Equal": torch.eq, "Less": torch.lt, "Greater": torch.gt}


def _node(op, a, x):
    """The outputs of one node (a tuple) from its inputs x (None for a missing optional input)."""
    if op in _UNARY:
        return (_UNARY[op](x[0]),)
    if op in _BINARY:
        return (_BINARY[op](x[0], x[1]),)
    if op in ("Min", "Max"):
        fn = torch.minimum if op == "Min" else torch.maximum
        y = x[0]
        for t in x[1:]:
            y = fn(y, t)
        return (y,)
    if op == "LeakyRelu":
        return (F.leaky_relu(x[0], a.get("alpha", 0.01)),)
    if op == "HardSigmoid":
        return (torch.clamp(a.get("alpha", 0.2) * x[0] + a.get("beta", 0.5), 0, 1),)
    if op == "Clip":
        lo = x[1] if len(x) > 1 and x[1] is not None else None
        hi = x[2] if len(x) > 2 and x[2] is not None else None
        y = x[0]
        if lo is not None:
            y = torch.maximum(y, lo)
        if hi is not None:
            y = torch.minimum(y, hi)
        return (y,)
    if op == "Constant":
        return (_constant(a),)
    if op in ("Identity", "Dropout"):
        return (x[0],)
    if op == "Cast":
        return (x[0].to(_DTYPES[a["to"]]),)
    if op == "Shape":
        return (torch.tensor(list(x[0].shape), dtype=torch.int64),)
    if op == "ConstantOfShape":
        v = _tensor(a["value"]) if "value" in a else torch.zeros(1, dtype=torch.float32)
        return (torch.full(x[0].tolist(), v.reshape(-1)[0].item(), dtype=v.dtype),)
    if op == "Range":
        return (torch.arange(x[0].item(), x[1].item(), x[2].item(), dtype=x[0].dtype),)
    if op == "Where":
        return (torch.where(x[0], x[1], x[2]),)
    if op == "Conv":
        return (_conv(x[0], x[1], x[2] if len(x) > 2 else None, a),)
    if op == "ConvTranspose":
        return (_conv_transpose(x[0], x[1], x[2] if len(x) > 2 else None, a),)
    if op == "BatchNormalization":
        if a.get("training_mode", 0):
            raise NotImplementedError("BatchNormalization training_mode")
        shape = [1, -1] + [1] * (x[0].dim() - 2)
        scale, bias, mean, var = (t.view(shape) for t in x[1:5])
        return ((x[0] - mean) / torch.sqrt(var + a.get("epsilon", 1e-5)) * scale + bias,)
    if op in ("MaxPool", "AveragePool"):
        return (_pool(op, x[0], a),)
    if op in ("GlobalAveragePool", "GlobalMaxPool"):
        dims = list(range(2, x[0].dim()))
        return (x[0].mean(dim=dims, keepdim=True) if op == "GlobalAveragePool" else x[0].amax(dim=dims, keepdim=True),)
    if op in ("ReduceMean", "ReduceSum", "ReduceMax"):
        return (_reduce(op, x[0], a, x),)
    if op == "Gemm":
        A = x[0].t() if a.get("transA", 0) else x[0]
        B = x[1].t() if a.get("transB", 0) else x[1]
        y = a.get("alpha", 1.0) * (A @ B)
        if len(x) > 2 and x[2] is not None:
            y = y + a.get("beta", 1.0) * x[2]
        return (y,)
    if op == "MatMul":
        return (torch.matmul(x[0], x[1]),)
    if op == "Softmax":
        return (torch.softmax(x[0], dim=a.get("axis", -1)),)
    if op == "Resize":
        scales = x[2].tolist() if len(x) > 2 and x[2] is not None and x[2].numel() else None
        if scales is None:
            sizes = x[3].tolist()
            scales = [sizes[i] / x[0].shape[i] for i in range(x[0].dim())]
        return (_resize(x[0], scales, _s(a, "mode", "nearest"), _s(a, "coordinate_transformation_mode", "half_pixel"),
                        _s(a, "nearest_mode", "round_prefer_floor")),)
    if op == "Transpose":
        return (x[0].permute(a.get("perm", list(range(x[0].dim()))[::-1])),)
    if op == "Concat":
        return (torch.cat(x, dim=a["axis"]),)
    if op == "Gather":
        ax = a.get("axis", 0) % x[0].dim()
        idx = x[1].long()
        idx = torch.where(idx < 0, idx + x[0].shape[ax], idx)
        y = x[0].index_select(ax, idx.reshape(-1))
        return (y.reshape(list(x[0].shape[:ax]) + list(idx.shape) + list(x[0].shape[ax + 1:])),)
    if op == "Slice":
        return (_slice(x[0], x[1], x[2], x[3] if len(x) > 3 else None, x[4] if len(x) > 4 else None),)
    if op == "Expand":
        shape = torch.broadcast_shapes(tuple(x[0].shape), tuple(x[1].tolist()))
        return (x[0].expand(shape).clone(),)
    if op == "Pad":
        return (_pad(x[0], x[1], x[2] if len(x) > 2 else None, _s(a, "mode", "constant")),)
    if op == "Reshape":
        return (_reshape(x[0], x[1], a.get("allowzero", 0)),)
    if op == "Flatten":
        ax = a.get("axis", 1)
        ax = ax + x[0].dim() if ax < 0 else ax
        lead = int(np.prod(x[0].shape[:ax])) if ax else 1
        return (x[0].reshape(lead, -1),)
    if op == "Squeeze":
        axes = _axes(a, x[0], x)
        if axes is None:
            return (x[0].squeeze(),)
        return (x[0].reshape([d for i, d in enumerate(x[0].shape) if i not in axes]),)
    if op == "Unsqueeze":
        axes = a.get("axes", x[1].tolist() if len(x) > 1 else None)
        n = x[0].dim() + len(axes)
        axes = sorted(ax % n for ax in axes)
        y = x[0]
        for ax in axes:
            y = y.unsqueeze(ax)
        return (y,)
    raise NotImplementedError(f"onnxcheck: operator {op}")


def run_model(model, inputs: dict):
    """Runs a decoded ONNX model on inputs (name -> tensor); returns its outputs by name."""
    env = {t.name: _tensor(t) for t in model.graph.initializer}
    env.update(inputs)
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise NotImplementedError(f"onnxcheck: operator {node.domain}.{node.op_type}")
        x = [env[i] if i else None for i in node.input]
        ys = _node(node.op_type, _attrs(node), x)
        for name, y in zip(node.output, ys):
            if name:
                env[name] = y
    return {o.name: env[o.name] for o in model.graph.output}


def run(path, inputs: dict):
    """Runs the ONNX model at path on inputs (name -> float32 tensor); returns outputs by name."""
    return run_model(onnx.load(path), inputs)
