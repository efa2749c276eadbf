"""A small ONNX interpreter (in torch, for the operators the bundles use) so
the exporter can check that each exported graph computes what the PyTorch
module computes. It follows the ONNX operator specifications, independently
of torch.onnx's export, e.g. Resize's coordinate transformations are written
out from the spec."""
from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _resize(x, scales, mode, ctm, nearest_mode):
    out = x
    for axis in (2, 3):
        s = float(scales[axis])
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
        else:
            raise NotImplementedError(f"Resize coordinate_transformation_mode {ctm}")
        if mode == "nearest":
            if nearest_mode != "floor":
                raise NotImplementedError(f"Resize nearest_mode {nearest_mode}")
            idx = torch.clamp(torch.floor(src), 0, n_in - 1).long()
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


def run(path, inputs: dict):
    """Runs the ONNX model at path on inputs (name -> float32 tensor); returns outputs by name."""
    model = onnx.load(path)
    env = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    env.update(inputs)
    for node in model.graph.node:
        a = _attrs(node)
        x = [env[i] if i else None for i in node.input]
        op = node.op_type
        if op == "Constant":
            y = torch.from_numpy(numpy_helper.to_array(a["value"]).copy())
        elif op == "Identity":
            y = x[0]
        elif op in ("Add", "Sub", "Mul", "Div"):
            y = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div}[op](x[0], x[1])
        elif op == "Sqrt":
            y = torch.sqrt(x[0])
        elif op == "Relu":
            y = torch.relu(x[0])
        elif op == "Conv":
            pads = a.get("pads", [0, 0, 0, 0])
            inp = F.pad(x[0], (pads[1], pads[3], pads[0], pads[2]))
            y = F.conv2d(inp, x[1], x[2] if len(x) > 2 else None, stride=a.get("strides", [1, 1]),
                         dilation=a.get("dilations", [1, 1]), groups=a.get("group", 1))
        elif op == "Gemm":
            A = x[0].t() if a.get("transA", 0) else x[0]
            B = x[1].t() if a.get("transB", 0) else x[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                y = y + a.get("beta", 1.0) * x[2]
        elif op == "ReduceMean":
            y = x[0].mean(dim=tuple(a["axes"]), keepdim=bool(a.get("keepdims", 1)))
        elif op == "Resize":
            scales = x[2].tolist() if len(x) > 2 and x[2] is not None and x[2].numel() else None
            if scales is None:
                sizes = x[3].tolist()
                scales = [sizes[i] / x[0].shape[i] for i in range(4)]
            y = _resize(x[0], scales, a.get("mode", b"nearest").decode(),
                        a.get("coordinate_transformation_mode", b"half_pixel").decode(),
                        a.get("nearest_mode", b"round_prefer_floor").decode())
        else:
            raise NotImplementedError(f"onnxcheck: operator {op}")
        env[node.output[0]] = y
    return {o.name: env[o.name] for o in model.graph.output}
