"""The layers the exporter rewrites before ONNX export, recognised by their
exact type and checked parameters, never by their attributes alone.

CompressAI's generalized divisive normalisation layers are the only ones:
torch.onnx has no operator for them, so each is replaced by plain operators
with its reparametrised beta and gamma folded into constants
(docs/BUNDLE.md, "GDN layers"):

- GDN (compressai.layers.gdn.GDN, train.models.GDN):
  y = x / sqrt(beta + conv1x1(x^2, gamma)); inverse: y = x * sqrt(...)
- GDN1 (compressai.layers.gdn.GDN1, the simplified GDN of sc2bench's
  students): y = x * (1 / (beta + conv1x1(|x|, gamma))); inverse:
  y = x * (beta + conv1x1(|x|, gamma))

A module that looks like a GDN (beta, gamma and their reparametrisers) but
is none of these exact types, e.g. a subclass with its own forward, is an
UnsupportedLayer error that names it. Every other layer goes to torch.onnx
as it is; what it exports to is checked operator by operator against the
native engine's list (train.onnxcheck.NATIVE_OPS) and then by the parity
gate.
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F


class UnsupportedLayer(ValueError):
    """A layer the exporter cannot carry; the message names it."""


def type_name(obj) -> str:
    t = type(obj)
    return f"{t.__module__}.{t.__qualname__}"


# Exact types (module, qualified name) -> GDN kind. A class's __module__ is
# where it is defined, whatever path it was imported through.
GDN_TYPES = {
    "compressai.layers.gdn.GDN": "gdn",
    "compressai.layers.gdn.GDN1": "gdn1",
    "train.models.GDN": "gdn",
}
PARAMETRIZER_TYPES = {
    "compressai.ops.parametrizers.NonNegativeParametrizer",
    "train.models.NonNegativeParametrizer",
}
LOWER_BOUND_TYPES = {"compressai.ops.bound_ops.LowerBound", "train.entropy.LowerBound"}
_GDN_ATTRS = ("beta", "gamma", "beta_reparam", "gamma_reparam")


class PlainGDN(nn.Module):
    """GDN with its reparametrised beta and gamma folded into constants:
    x / sqrt(conv1x1(x * x, gamma) + beta), or x * sqrt(...) when inverse."""

    def __init__(self, beta, gamma, inverse):
        super().__init__()
        self.register_buffer("beta", beta.detach().clone())
        self.register_buffer("gamma", gamma.detach().clone())
        self.inverse = bool(inverse)

    def forward(self, x):
        norm = torch.sqrt(F.conv2d(x * x, self.gamma, self.beta))
        return x * norm if self.inverse else x / norm


class PlainGDN1(nn.Module):
    """GDN1 with its reparametrised beta and gamma folded into constants, in
    CompressAI's order of operations: norm = conv1x1(|x|, gamma) + beta, then
    x * (1 / norm), or x * norm when inverse."""

    def __init__(self, beta, gamma, inverse):
        super().__init__()
        self.register_buffer("beta", beta.detach().clone())
        self.register_buffer("gamma", gamma.detach().clone())
        self.inverse = bool(inverse)

    def forward(self, x):
        norm = F.conv2d(torch.abs(x), self.gamma, self.beta)
        return x * norm if self.inverse else x * (1.0 / norm)


def _check_reparam(path, layer, attr):
    p = getattr(layer, attr)
    if type_name(p) not in PARAMETRIZER_TYPES:
        raise UnsupportedLayer(f"layer {path!r} ({type_name(layer)}): its {attr} is a {type_name(p)}, "
                               f"not a NonNegativeParametrizer the exporter knows")
    lb = getattr(p, "lower_bound", None)
    if type_name(lb) not in LOWER_BOUND_TYPES or not torch.is_tensor(getattr(p, "pedestal", None)) \
            or not torch.is_tensor(getattr(lb, "bound", None)):
        raise UnsupportedLayer(f"layer {path!r} ({type_name(layer)}): its {attr} lacks CompressAI's "
                               f"pedestal and lower_bound.bound")


def plain_gdn(path, layer):
    """The plain-operator replacement of a known GDN layer (exact type and
    parameters checked), or an UnsupportedLayer error that names it."""
    kind = GDN_TYPES.get(type_name(layer))
    if kind is None:
        raise UnsupportedLayer(f"layer {path!r} is a {type_name(layer)}: it has a GDN's parameters but is "
                               f"not one of the GDN types the exporter knows ({', '.join(sorted(GDN_TYPES))}); "
                               f"its forward cannot be assumed")
    beta, gamma = layer.beta, layer.gamma
    if beta.dim() != 1 or gamma.shape != (beta.numel(), beta.numel()):
        raise UnsupportedLayer(f"layer {path!r} ({type_name(layer)}): beta {tuple(beta.shape)} and gamma "
                               f"{tuple(gamma.shape)} are not (C,) and (C, C)")
    if not isinstance(getattr(layer, "inverse", None), bool):
        raise UnsupportedLayer(f"layer {path!r} ({type_name(layer)}): no boolean 'inverse'")
    for attr in ("beta_reparam", "gamma_reparam"):
        _check_reparam(path, layer, attr)
    C = beta.numel()
    with torch.no_grad():
        b = layer.beta_reparam(beta)
        g = layer.gamma_reparam(gamma).reshape(C, C, 1, 1)
    return (PlainGDN if kind == "gdn" else PlainGDN1)(b, g, layer.inverse)


def _looks_like_gdn(m) -> bool:
    if type_name(m) in GDN_TYPES:
        return True
    if any(f"{c.__module__}.{c.__qualname__}" in GDN_TYPES for c in type(m).__mro__[1:]):
        return True  # a subclass of a known GDN: its forward may differ
    return all(hasattr(m, a) for a in _GDN_ATTRS)


def fold_layers(module: nn.Module) -> nn.Module:
    """A copy of module in eval mode with every GDN-family layer replaced by
    its plain-operator form; raises UnsupportedLayer for a GDN-like layer of
    a type it does not know."""
    root = copy.deepcopy(module)
    if _looks_like_gdn(root):
        return plain_gdn("(the module itself)", root).eval()

    def visit(m, prefix):
        for name, child in list(m.named_children()):
            path = f"{prefix}.{name}" if prefix else name
            if _looks_like_gdn(child):
                setattr(m, name, plain_gdn(path, child))
            else:
                visit(child, path)

    visit(root, "")
    return root.eval()


def layer_at(module: nn.Module, node_name: str):
    """The path and type of the submodule an ONNX node came from, read from
    the scope torch.onnx writes into node names ("/encoder/encoder.3/Sin"):
    the last scope is the module's path from the exported root."""
    parts = [p for p in node_name.split("/") if p]
    if len(parts) < 2:
        return "(the module itself)", type_name(module)
    path = parts[-2]
    try:
        return path, type_name(module.get_submodule(path))
    except AttributeError:
        return path, "?"
