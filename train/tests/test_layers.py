"""The GDN family: CompressAI's GDN and GDN1 (the tests' stand-in with
CompressAI's module paths and state_dict layout) against the formulas, their
plain-operator forms against the layers, through ONNX, and layers the
exporter must refuse by name."""
import io
from collections import OrderedDict

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
from compressai.layers import GDN, GDN1

from train import layers as L
from train import models as M
from train import onnxcheck


def randomised(layer, seed):
    """The layer with beta and gamma moved off their initial values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        layer.beta.add_(0.3 * torch.rand(layer.beta.shape, generator=g))
        layer.gamma.add_(0.1 * torch.rand(layer.gamma.shape, generator=g))
    return layer


def formula(kind, inverse, x, beta, gamma):
    """The published formulas in float64 numpy, per channel i:
    GDN: x_i / sqrt(beta_i + sum_j gamma_ij x_j^2), GDN1: x_i / (beta_i + sum_j gamma_ij |x_j|)."""
    x = x.astype(np.float64)
    t = x * x if kind == "gdn" else np.abs(x)
    norm = np.einsum("ij,njhw->nihw", gamma.astype(np.float64), t) + beta.astype(np.float64)[None, :, None, None]
    if kind == "gdn":
        norm = np.sqrt(norm)
    return x * norm if inverse else x / norm


def effective(layer):
    return (layer.beta_reparam(layer.beta).detach().numpy(), layer.gamma_reparam(layer.gamma).detach().numpy())


CASES = [(GDN, "gdn", False, {}), (GDN, "gdn", True, {}), (GDN1, "gdn1", False, {}), (GDN1, "gdn1", True, {}),
         (GDN1, "gdn1", False, {"beta_min": 0.5}), (GDN, "gdn", True, {"beta_min": 1e-3, "gamma_init": 0.5}),
         (M.GDN, "gdn", False, {})]


@pytest.mark.parametrize("cls,kind,inverse,kw", CASES)
def test_layer_matches_formula_and_folds_exactly(cls, kind, inverse, kw):
    layer = randomised(cls(6, inverse=inverse, **kw), 1).eval()
    x = torch.randn(2, 6, 5, 7)
    beta, gamma = effective(layer)
    with torch.no_grad():
        y = layer(x)
        plain = L.fold_layers(nn.Sequential(layer))
        assert type(plain[0]) is (L.PlainGDN if kind == "gdn" else L.PlainGDN1)
        yp = plain(x)
    want = formula(kind, inverse, x.numpy(), beta, gamma)
    assert np.allclose(y.numpy(), want, rtol=1e-5, atol=1e-6)
    assert np.allclose(yp.numpy(), want, rtol=1e-5, atol=1e-6)
    if kind == "gdn1":  # the same operations in the same order as CompressAI: bit for bit
        assert torch.equal(yp, y)
    b = io.BytesIO()
    torch.onnx.export(plain, x, b, opset_version=13)
    model = onnx.load_from_string(b.getvalue())
    ops = [n.op_type for n in model.graph.node]
    if kind == "gdn1":
        assert "Abs" in ops and "Sqrt" not in ops
    got = onnxcheck.run_model(model, {model.graph.input[0].name: x})
    assert np.allclose(next(iter(got.values())).numpy(), want, rtol=1e-5, atol=1e-6)


def test_state_dict_layout_is_compressai_s():
    assert sorted(GDN1(4).state_dict()) == ["beta", "beta_reparam.lower_bound.bound", "beta_reparam.pedestal",
                                            "gamma", "gamma_reparam.lower_bound.bound", "gamma_reparam.pedestal"]
    assert L.type_name(GDN1(4)) == "compressai.layers.gdn.GDN1"


def test_gdn1_is_not_folded_as_gdn():
    """The bug of issue 17: GDN1 subclasses GDN and has the same attributes."""
    layer = randomised(GDN1(4), 2)
    assert isinstance(layer, GDN)
    assert type(L.fold_layers(nn.Sequential(layer))[0]) is L.PlainGDN1


def test_a_gdn_subclass_is_refused_by_name():
    class MyGDN(GDN):
        def forward(self, x):
            return super().forward(x) * 2

    enc = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Sequential(nn.ReLU(), MyGDN(4)))
    with pytest.raises(L.UnsupportedLayer, match=r"layer '1.1' is a .*MyGDN"):
        L.fold_layers(enc)


def test_a_gdn_look_alike_is_refused_by_name():
    class LookAlike(nn.Module):
        def __init__(self):
            super().__init__()
            g = GDN(4)
            self.beta, self.gamma, self.beta_reparam, self.gamma_reparam = g.beta, g.gamma, g.beta_reparam, g.gamma_reparam

        def forward(self, x):
            return x

    with pytest.raises(L.UnsupportedLayer, match=r"layer 'norm' is a .*LookAlike"):
        L.fold_layers(nn.Sequential(OrderedDict(norm=LookAlike())))
