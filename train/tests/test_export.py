"""The exporter on a tiny CompressAI-style model: files, manifest, hash,
reference vectors and the plain-op ONNX graphs."""
import json
import os

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from train import data as D
from train import export as E
from train import layers as L
from train import testset as T
from train.entropy import compress_symbols
from train.models import GDN
from train.tests.test_entropy import VECTORS

ALLOWED_OPS = {"Mul", "Conv", "Add", "Sqrt", "Pow", "Div", "BatchNormalization", "Relu", "LeakyRelu", "Sigmoid",
               "Clip", "MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean", "Sub", "Exp", "Round", "Gemm",
               "MatMul", "Flatten", "Reshape", "Transpose", "Concat", "Softmax", "ConvTranspose", "Resize",
               "Constant", "Identity", "Shape", "Gather", "Unsqueeze", "Squeeze", "Slice", "Cast",
               "ConstantOfShape"}


class CompressAIStyleBottleneck(nn.Module):
    """Stands in for compressai's EntropyBottleneck after update(): only the
    attributes the exporter reads (tables from CompressAI's own test vectors)."""

    def __init__(self, channels):
        super().__init__()
        with open(VECTORS) as f:
            v = json.load(f)
        n = max(v["cdf_lengths"][:channels])
        self.register_buffer("_quantized_cdf", torch.tensor([r[:n] + [0] * (n - len(r[:n])) for r in v["cdfs"][:channels]],
                                                            dtype=torch.int32))
        self.register_buffer("_cdf_length", torch.tensor(v["cdf_lengths"][:channels], dtype=torch.int32))
        self.register_buffer("_offset", torch.tensor(v["offsets"][:channels], dtype=torch.int32))
        q = torch.tensor([[-3.0, 0.25, 3.0]]).repeat(channels, 1).unsqueeze(1)
        self.quantiles = nn.Parameter(q)


class TinyHeads(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.cls = nn.Linear(c, 10)
        self.hm, self.sz, self.off = nn.Conv2d(c, 10, 1), nn.Conv2d(c, 2, 1), nn.Conv2d(c, 2, 1)
        self.seg = nn.Conv2d(c, 11, 1)


def tiny_model():
    torch.manual_seed(0)
    enc = nn.Sequential(nn.Conv2d(3, 4, 5, 2, 2, bias=False), GDN(4), nn.Conv2d(4, 4, 5, 2, 2, bias=False), GDN(4),
                        nn.Conv2d(4, 3, 2, 1, 0, bias=False))
    trunk = nn.Sequential(nn.Conv2d(3, 4, 2, 1, 1, bias=False), GDN(4, inverse=True), nn.ReLU())
    h = TinyHeads(4)

    class Head(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.h, self.fn = h, fn

        def forward(self, x):
            return self.fn(self.h, x)

    return enc, trunk, {
        "classify": Head(lambda h, x: h.cls(x.mean(dim=(2, 3)))),
        "detect": Head(lambda h, x: (h.hm(x), h.sz(x), h.off(x))),
        "segment": Head(lambda h, x: F.interpolate(h.seg(x), scale_factor=4.0, mode="bilinear",
                                                   align_corners=False)),
    }


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, engines):
    out = str(tmp_path_factory.mktemp("zoo"))
    test = D.generate("test", 6, seed=4)
    T.write_testset(out, test)
    test = T.load_testset(out)
    enc, trunk, heads = tiny_model()
    eb = CompressAIStyleBottleneck(3)
    m = E.export_split_bundle(out, "tiny-es", enc, eb, trunk, heads, test, [0.5] * 3, [0.25] * 3, n_ref=2, batch=4,
                              engines=engines, quiet=True)
    return out, m, enc, eb, test


def test_testset_round_trip(bundle):
    out, _, _, _, test = bundle
    again = T.load_testset(out)
    assert np.array_equal(again["images"], test["images"]) and again["boxes"] == test["boxes"]
    assert os.path.exists(os.path.join(out, "testset", "mask_0005.png"))


def test_manifest_fields_and_hash(bundle):
    out, m, _, _, _ = bundle
    folder = os.path.join(out, "tiny-es")
    assert m["kind"] == "split" and m["latent"] == {"channels": 3, "height": 23, "width": 23}
    assert [h["task"] for h in m["heads"]] == ["classification", "detection", "segmentation"]
    for f in ["encoder.onnx", "trunk.onnx", "entropy.json"] + [h["file"] for h in m["heads"]]:
        assert os.path.exists(os.path.join(folder, f)), f
    met = m["metrics"]
    assert met["images"] == 6 and met["bytes_per_image"] >= 8 and met["jpeg_q90_bytes_per_image"] > 0
    assert E.verify_hash(folder)
    with open(os.path.join(folder, "entropy.json"), "a") as f:
        f.write(" ")
    assert not E.verify_hash(folder)


def test_entropy_tables_are_compressai_rows(bundle):
    out, _, _, eb, _ = bundle
    t = json.load(open(os.path.join(out, "tiny-es", "entropy.json")))
    with open(VECTORS) as f:
        v = json.load(f)
    assert t["cdfs"] == [r[:n] for r, n in zip(v["cdfs"][:3], v["cdf_lengths"][:3])]
    assert t["offsets"] == v["offsets"][:3] and t["medians"] == [0.25] * 3


def test_reference_vectors(bundle):
    out, _, enc, eb, test = bundle
    ref = os.path.join(out, "tiny-es", "reference")
    idx = json.load(open(os.path.join(ref, "index.json")))
    assert len(idx["images"]) == 2
    tables = E.entropy_tables(eb)
    for entry in idx["images"]:
        t = {e["name"]: e for e in entry["tensors"]}
        assert {"input", "latent", "symbols", "rans", "logits", "heatmap", "size", "offset", "mask_logits"} <= set(t)

        def load(name):
            e = t[name]
            dt = {"float32": "<f4", "int32": "<i4", "uint8": "u1"}[e["dtype"]]
            return np.fromfile(os.path.join(ref, e["file"]), dtype=dt).reshape(e["shape"])

        x = E.normalise(test["images"][entry["index"]:entry["index"] + 1], [0.5] * 3, [0.25] * 3)
        assert np.array_equal(load("input"), x.numpy())
        with torch.no_grad():
            y = enc(x).numpy()
        assert np.allclose(load("latent"), y, atol=1e-6)
        sym = load("symbols")
        assert np.array_equal(sym, np.round(load("latent") - 0.25).astype(np.int32))
        rans = load("rans").tobytes()
        assert rans == compress_symbols(sym[0], tables["cdfs"], tables["cdf_lengths"], tables["offsets"])


def test_onnx_graphs_use_supported_plain_ops(bundle):
    out, m, _, _, _ = bundle
    for f in ["encoder.onnx", "trunk.onnx", "head_classify.onnx", "head_detect.onnx", "head_segment.onnx"]:
        g = onnx.load(os.path.join(out, "tiny-es", f))
        ops = {n.op_type for n in g.graph.node}
        assert ops <= ALLOWED_OPS, (f, ops - ALLOWED_OPS)
        assert g.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert set(m["onnx"]["ops"]) <= ALLOWED_OPS


def test_fold_gdn_matches_gdn():
    torch.manual_seed(1)
    for inverse in (False, True):
        g = GDN(5, inverse=inverse)
        with torch.no_grad():
            g.gamma.add_(0.05 * torch.rand_like(g.gamma))
            g.beta.add_(0.1)
        m = nn.Sequential(g)
        x = torch.randn(2, 5, 6, 6)
        plain = L.fold_layers(m)
        assert isinstance(plain[0], L.PlainGDN)
        assert torch.allclose(plain(x), m(x), atol=1e-5)


def test_onnx_graphs_match_pytorch(bundle):
    _, m, _, _, _ = bundle
    diffs = m["onnx"]["parity"]["max_abs_diff"]
    assert set(diffs) == {"encoder", "trunk", "head_classify", "head_detect", "head_segment"}
    assert max(diffs.values()) < 1e-4, diffs


def test_onnxcheck_resize_follows_spec():
    from train import onnxcheck

    x = torch.arange(6, dtype=torch.float32).view(1, 1, 2, 3)
    lin = onnxcheck._resize(x, [1, 1, 2, 2], "linear", "half_pixel", "floor")
    assert torch.allclose(lin, F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
    near = onnxcheck._resize(x, [1, 1, 2, 2], "nearest", "asymmetric", "floor")
    assert torch.equal(near[0, 0, :, 0], torch.tensor([0.0, 0.0, 3.0, 3.0]))


def test_remove_stale_students(tmp_path):
    for name in ["fmnist-es-b0.1", "fmnist-es-b0.4", "fmnist-teacher", "testset"]:
        (tmp_path / name).mkdir()
    (tmp_path / "fmnist-es-notes.txt").write_text("a file, not a bundle")
    E.remove_stale_students(str(tmp_path), {"fmnist-es-b0.1"})
    assert sorted(os.listdir(tmp_path)) == ["fmnist-es-b0.1", "fmnist-es-notes.txt", "fmnist-teacher", "testset"]
