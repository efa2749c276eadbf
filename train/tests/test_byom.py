"""Bringing your own model: the example models of train.examples.byom through
train.export_model and the Go engines, a classify-only model evaluated by
`splitstream eval`, a torchvision-style head, a layer the native engine
cannot run, a forced parity failure, and an export without a test set."""
import json
import os
import subprocess

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn

from train import data as D
from train import export as E
from train import export_model as X
from train import gate
from train import layers as L
from train import testset as T
from train.examples import byom

MEAN, STD = byom.MEAN, byom.STD


@pytest.fixture(scope="module")
def testset(tmp_path_factory):
    """A six-image test set in its own folder, away from any bundle."""
    out = str(tmp_path_factory.mktemp("data"))
    T.write_testset(out, D.generate("test", 6, seed=5))
    return os.path.join(out, "testset")


def updated(parts):
    torch.manual_seed(0)
    parts["entropy_bottleneck"].update(force=True)
    return parts


def export(parts, folder, testset, engines, heads=None, **kw):
    heads = heads or parts["heads"]
    return E.export_bundle(folder, parts["encoder"], parts["entropy_bottleneck"], parts["trunk"], heads,
                           T.load(testset) if testset else None, MEAN, STD, engines=engines, quiet=True, **kw)


def run_eval(binary, bundle, testset):
    p = subprocess.run([binary, "eval", "--bundle", bundle, "--testset", testset, "--json", "--threads", "1"],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def test_classify_only_model_exports_and_go_reproduces_its_metrics(tmp_path, testset, engines, splitstream_bin):
    torch.manual_seed(1)
    parts = updated(byom.classify_only())
    m = export(parts, str(tmp_path / "cls-only"), testset, engines, n_ref=6)
    assert [h["task"] for h in m["heads"]] == ["classification"]
    assert set(m["metrics"]) == {"top1", "images", "bytes_per_image", "jpeg_q90_bytes_per_image", "engine", "jpeg_ratio"}
    assert m["testset"] == os.path.relpath(testset, str(tmp_path / "cls-only"))
    got = run_eval(splitstream_bin, str(tmp_path / "cls-only"), testset)
    assert got["top1"] == m["metrics"]["top1"] and got["images"] == 6
    assert got["bytes_per_image"] == m["metrics"]["bytes_per_image"]


def test_sc2bench_student_with_gdn1_passes_the_gate(tmp_path, testset, engines):
    torch.manual_seed(2)
    parts = updated(byom.student_gdn1(latent=4))
    m = export(parts, str(tmp_path / "student"), testset, engines)
    assert [h["name"] for h in m["heads"]] == ["classify", "detect", "segment"]
    assert "Abs" in m["onnx"]["ops"] and m["heads"][1]["postprocess"]["stride"] == 4
    rep = gate.measure(str(tmp_path / "student"), engines)
    assert rep["codec_equal"] == rep["images"]
    assert all(g["max_abs_diff"] <= 1e-4 * max(1, g["max_abs_ref"]) for g in rep["graphs"])


def test_torchvision_style_head_exports_to_global_average_pool_and_flatten(tmp_path, testset, engines):
    torch.manual_seed(3)
    parts = updated(byom.classify_only())
    export(parts, str(tmp_path / "tv"), testset, engines)
    ops = {n.op_type for n in onnx.load(str(tmp_path / "tv" / "head_classify.onnx")).graph.node}
    assert {"GlobalAveragePool", "Flatten", "Gemm"} <= ops


class Wavy(nn.Module):
    """A custom layer whose operator (Sin) the native engine does not implement."""

    def forward(self, x):
        return torch.sin(x)


def test_unsupported_custom_layer_fails_with_its_name(tmp_path, testset, engines):
    parts = updated(byom.classify_only())
    parts["trunk"] = nn.Sequential(parts["trunk"], Wavy())
    with pytest.raises(L.UnsupportedLayer, match=r"trunk: layer '1' \(.*Wavy\) exports to the ONNX operator Sin"):
        export(parts, str(tmp_path / "wavy"), testset, engines)
    assert os.listdir(tmp_path) == []


def test_forced_parity_failure_fails_and_leaves_no_folder(tmp_path, testset, engines, monkeypatch):
    """GDN1 folded as the square-root GDN (the bug of issue 17) must fail the gate."""
    monkeypatch.setitem(L.GDN_TYPES, "compressai.layers.gdn.GDN1", "gdn")
    torch.manual_seed(2)
    parts = updated(byom.student_gdn1(latent=4))
    with pytest.raises(gate.ParityError, match=r"graph encoder \(latent\) with engine native: max \|diff\| from PyTorch"):
        export(parts, str(tmp_path / "wrong"), testset, engines)
    assert os.listdir(tmp_path) == []


def test_a_failed_export_keeps_the_older_bundle(tmp_path, testset, engines, monkeypatch):
    parts = updated(byom.classify_only())
    export(parts, str(tmp_path / "b"), testset, engines)
    before = sorted(os.listdir(tmp_path / "b"))
    monkeypatch.setattr(gate, "TOLERANCE", 0.0)
    with pytest.raises(gate.ParityError):
        export(parts, str(tmp_path / "b"), testset, engines, tolerance=0.0)
    assert sorted(os.listdir(tmp_path)) == ["b"] and sorted(os.listdir(tmp_path / "b")) == before
    assert E.verify_hash(str(tmp_path / "b"))


def test_export_without_a_test_set(tmp_path, engines):
    parts = updated(byom.classify_only())
    with pytest.raises(ValueError, match="labels"):
        export(parts, str(tmp_path / "n"), None, engines, input_size=(64, 48))
    m = export(parts, str(tmp_path / "n"), None, engines, input_size=(64, 48), labels=["cat", "dog"] * 5)
    assert m["metrics"] == {"images": 0, "engine": "pytorch"} and m["testset"] == ""
    assert m["input"]["height"] == 64 and m["heads"][0]["labels"][:2] == ["cat", "dog"]


def test_labels_must_fit_the_head(tmp_path, testset, engines):
    parts = updated(byom.classify_only())
    with pytest.raises(ValueError, match=r"logits of shape \(1, 10\), want \(N, 3\)"):
        export(parts, str(tmp_path / "x"), None, engines, input_size=(96, 96), labels=["a", "b", "c"])


def test_entry_point_end_to_end(tmp_path, testset, engines, capsys):
    torch.manual_seed(4)
    parts = byom.factorized_prior(n=8, m=8)
    parts["entropy_bottleneck"].update(force=True)
    torch.save(parts["model"].state_dict(), tmp_path / "fp.pt")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(D.LABELS) + "\n")
    args = ["train.examples.byom:factorized_prior", "--checkpoint", str(tmp_path / "fp.pt"), "--labels", str(labels),
            "--mean", *map(str, MEAN), "--std", *map(str, STD), "--testset", testset, "--heads", "classify",
            "--engines", ",".join(engines), "--out", str(tmp_path / "out" / "fp")]
    assert X.main(args) == 1  # n=16, m=24 by default: the checkpoint's shapes do not fit
    assert "size mismatch" in capsys.readouterr().err and not os.path.exists(tmp_path / "out" / "fp")
    (tmp_path / "fac.py").write_text("from train.examples.byom import factorized_prior\n"
                                     "def build():\n    return factorized_prior(n=8, m=8)\n")
    args[0] = f"{tmp_path / 'fac.py'}:build"
    assert X.main(args) == 0, capsys.readouterr().err
    m = json.load(open(tmp_path / "out" / "fp" / "manifest.json"))
    assert [h["name"] for h in m["heads"]] == ["classify"] and "ConvTranspose" in m["onnx"]["ops"]
    assert E.verify_hash(str(tmp_path / "out" / "fp"))
