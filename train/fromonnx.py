"""Loads the weights of an exported graph back into the PyTorch module it was
exported from, for runs that have the shipped bundles but not their training
checkpoints (train/runs/ is not in git).

The exported graphs have the batch norms folded into the convolutions and the
GDN layers as plain operators (train/layers.py). Weights are matched by
execution order: the module is run once with hooks on its Conv2d, GDN and
Linear layers, and the i-th of those calls takes the i-th Conv or Gemm node of
the graph (a GDN is one 1x1 Conv whose weight is gamma and bias beta). A
convolution followed by a batch norm in its parent takes the folded weight and
the norm becomes the identity plus the folded bias (weight 1, mean 0, variance
1 - eps). Shapes are checked at every step, and `load` checks the module's
output against the graph's (train/onnxcheck.py's interpreter) on a seeded input.
"""
from __future__ import annotations

import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

from . import onnxcheck
from .models import GDN, Student


def _bn_after(module):
    """{conv module: the BatchNorm2d that follows it among its parent's children}."""
    pairs = {}
    for parent in module.modules():
        kids = list(parent.children())
        for a, b in zip(kids, kids[1:]):
            if isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d):
                pairs[a] = b
    return pairs


def _call_order(module, example):
    order, hooks = [], []
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, GDN, nn.Linear)):
            hooks.append(m.register_forward_hook(lambda mod, i, o: order.append(mod)))
    try:
        with torch.no_grad():
            module.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return order


def load(module: nn.Module, path: str, example: torch.Tensor, input_name: str, atol: float = 1e-4):
    """Copies the weights of the ONNX graph at path into module (in place) and
    returns the largest difference between the two on example."""
    model = onnx.load(path)
    init = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    nodes = [n for n in model.graph.node if n.op_type in ("Conv", "Gemm")]
    order = _call_order(module, example)
    if len(order) != len(nodes):
        raise ValueError(f"{path}: {len(nodes)} Conv/Gemm nodes, the module calls {len(order)} layers")
    bns = _bn_after(module)
    with torch.no_grad():
        for m, n in zip(order, nodes):
            w = init[n.input[1]]
            b = init[n.input[2]] if len(n.input) > 2 and n.input[2] else None
            if isinstance(m, GDN):
                C = m.beta.numel()
                if n.op_type != "Conv" or tuple(w.shape) != (C, C, 1, 1):
                    raise ValueError(f"{path}: node {n.name} does not fit GDN of {C} channels")
                m.beta.copy_(m.beta_reparam.init(b))
                m.gamma.copy_(m.gamma_reparam.init(w.reshape(C, C)))
                continue
            if isinstance(m, nn.Linear):
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                if n.op_type != "Gemm" or attrs.get("transB", 0) != 1:
                    raise ValueError(f"{path}: node {n.name} is not a Linear's Gemm")
            if tuple(w.shape) != tuple(m.weight.shape):
                raise ValueError(f"{path}: node {n.name} weight {tuple(w.shape)}, module {tuple(m.weight.shape)}")
            m.weight.copy_(w)
            bn = bns.get(m)
            if bn is not None:
                bn.weight.fill_(1.0)
                bn.bias.copy_(b if b is not None else torch.zeros_like(bn.bias))
                bn.running_mean.zero_()
                bn.running_var.fill_(1.0 - bn.eps)
            elif m.bias is not None:
                m.bias.copy_(b)
            elif b is not None:
                raise ValueError(f"{path}: node {n.name} has a bias the module lacks")
    with torch.no_grad():
        ours = module.eval()(example)
    ref = onnxcheck.run_model(model, {input_name: example})
    ours = ours if isinstance(ours, (tuple, list)) else [ours]
    diff = max(float((a - torch.as_tensor(r)).abs().max()) for a, r in zip(ours, ref.values()))
    if diff > atol * max(1.0, max(float(torch.as_tensor(r).abs().max()) for r in ref.values())):
        raise ValueError(f"{path}: the loaded module differs from the graph by {diff:g}")
    return diff


def load_heads(heads, folder, features_example):
    """Loads the three heads (models.Heads) from a bundle folder."""
    d = 0.0
    for name in ("classify", "detect", "segment"):
        d = max(d, load(getattr(heads, name), f"{folder}/head_{name}.onnx", features_example, "features"))
    return d


def load_student(folder, latent_channels, encoder_width, decoder_width, refine_width, seed=0):
    """A models.Student with the encoder, decoder, trunk and heads of the split
    bundle in folder (its entropy bottleneck stays untrained: the bundle holds
    only the tables, see entropy.EntropyBottleneck.from_tables)."""
    s = Student(latent_channels, encoder_width, decoder_width, refine_width)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 96, 96, generator=g)
    load(s.encoder, f"{folder}/encoder.onnx", x, "image")
    with torch.no_grad():
        y = s.encoder.eval()(x)
    load(nn.Sequential(s.decoder, s.trunk), f"{folder}/trunk.onnx", y, "latent")
    with torch.no_grad():
        f = s.trunk.eval()(s.decoder.eval()(y))
    load_heads(s.heads, folder, f)
    return s.eval()
