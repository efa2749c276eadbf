"""The compression schemes of train/compress.py and the pieces of
train/condensa.py around them: channel pruning keeps every shape consistent
and computes exactly what the encoder with those channels' filters zeroed
computes; magnitude pruning hits its sparsity and keeps it through the
fine-tune; a pruned encoder exports to a bundle that passes the parity gate
in both Go engines; the tables-only bottleneck writes the tables it read."""
import json
import os

import pytest
import torch

from train import compress as K
from train import condensa as C
from train import data as D
from train import export as E
from train import testset as T
from train.entropy import EntropyBottleneck
from train.models import Encoder
from train.tests.test_export import CompressAIStyleBottleneck, tiny_model

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def encoder(latent=5, width=12, seed=0):
    torch.manual_seed(seed)
    e = Encoder(latent, width=width).eval()
    with torch.no_grad():  # GDNs away from their identity-like start, so that channels interact
        for g in (e.layers[1], e.layers[3]):
            g.gamma.add_(0.3 * torch.rand_like(g.gamma))
    return e


def test_kept_count():
    assert K.kept_count(48, 0.0) == 48
    assert K.kept_count(48, 0.5) == 24
    assert K.kept_count(48, 0.3) == 32  # 33.6 -> a multiple of 4
    assert K.kept_count(48, 0.99 - 1e-9) == 4
    with pytest.raises(ValueError):
        K.kept_count(48, 1.0)


@pytest.mark.parametrize("layer", [0, 1])
def test_pruned_channels_equal_zeroed_filters(layer):
    e = encoder()
    drop = torch.tensor([1, 4, 7, 10])
    keep = torch.tensor([i for i in range(12) if i not in drop])
    full = torch.arange(12)
    p = K.prune_channels(e, keep if layer == 0 else full, keep if layer == 1 else full)
    w0, w1, c = K.widths(p)
    assert (w0, w1, c) == ((8, 12, 5) if layer == 0 else (12, 8, 5))
    z = K.prune_channels(e, full, full)  # a copy
    with torch.no_grad():
        z.layers[2 * layer].weight[drop] = 0
    x = torch.randn(3, 3, 40, 40)
    with torch.no_grad():
        y = p(x)
        assert y.shape == e(x).shape == (3, 5, 9, 9)
        assert torch.allclose(y, z(x), atol=1e-5)
        assert not torch.allclose(y, e(x), atol=1e-3)  # the dropped channels did contribute


def test_structured_ranks_by_saliency_and_keeps_latent():
    e = encoder()
    with torch.no_grad():
        e.layers[0].weight[3] *= 100  # a loud first-layer channel must survive
        e.layers[2].weight[5] *= 1e-4  # a near-silent second-layer channel must go
    x = torch.randn(4, 3, 32, 32)
    for kind in ("act", "l1"):
        p = K.structured(e, (0.5, 0.7), kind, calib=x)
        assert K.widths(p) == (8, 4, 5)  # 6 and 3.6 channels, rounded to multiples of 4
        kept0 = [i for i in range(12) if any(torch.equal(p.layers[0].weight[j], e.layers[0].weight[i]) for j in range(8))]
        kept1 = [i for i in range(12) if any(torch.equal(p.layers[2].weight[j], e.layers[2].weight[i][kept0])
                                             for j in range(4))]
        assert 3 in kept0 and 5 not in kept1, (kind, kept0, kept1)


def test_magnitude_masks_sparsity_survives_finetune():
    e = encoder()
    masks = K.magnitude_masks(e, 0.6)
    total, nonzero = K.parameters(e)
    conv = sum(w.numel() for w in K.conv_weights(e))
    assert abs((conv - sum(int((w != 0).sum()) for w in K.conv_weights(e))) - 0.6 * conv) <= 1
    x = torch.randn(16, 3, 32, 32)
    with torch.no_grad():
        target = encoder(seed=1)(x)
    K.finetune(e, x, target, steps=5, batch=4, masks=masks)
    for w, m in masks.items():
        assert torch.all(w[m == 0] == 0)
    assert K.parameters(e)[1] == nonzero


def test_finetune_moves_towards_target():
    e = K.structured(encoder(), 0.5, "l1")
    ref = encoder()
    x = torch.randn(32, 3, 32, 32)
    with torch.no_grad():
        t = ref(x)
    before = float(((e(x) - t) ** 2).mean() / (t ** 2).mean())
    after = K.finetune(e, x, t, steps=40, batch=8, lr=3e-3)
    assert after < before


def test_saved_sample_loads_back(tmp_path):
    e = K.structured(encoder(), (0.3, 0.6), "l1")
    torch.save({"widths": list(K.widths(e)[:2]), "state": e.state_dict()}, tmp_path / "s.pt")
    saved = torch.load(tmp_path / "s.pt")
    back = C.encoder_of_widths(*saved["widths"], 5)
    back.load_state_dict(saved["state"])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(back(x), e(x))


def test_tables_bottleneck_round_trip():
    with open(os.path.join(ROOT, "models/zoo/fmnist-es-b0.11/entropy.json")) as f:
        tables = json.load(f)
    got = E.entropy_tables(EntropyBottleneck.from_tables(tables))
    assert {k: got[k] for k in tables} == tables


def test_table_bytes_close_to_coded_bytes():
    with open(os.path.join(ROOT, "models/zoo/fmnist-es-b0.11/entropy.json")) as f:
        tables = json.load(f)
    eb = EntropyBottleneck.from_tables(tables)
    torch.manual_seed(0)
    y = eb.medians().view(1, -1, 1, 1) + 1.5 * torch.randn(2, 24, 6, 6)
    coded = sum(len(s) for s in eb.compress(y)) / 2
    assert abs(C.table_bytes(y, tables) - coded) <= 0.05 * coded + 4


def test_pruned_encoder_bundle_passes_gate_in_both_engines(tmp_path, engines):
    """The exporter's gate runs every graph in the Go engines (native, and ort
    where its library is) against PyTorch: a pruned encoder's bundle passes it."""
    out = str(tmp_path)
    test = D.generate("test", 4, seed=5)
    T.write_testset(out, test)
    test = T.load_testset(out)
    _, trunk, heads = tiny_model()
    e = K.structured(encoder(latent=3, width=12), (0.5, 0.25), "l1")
    m = E.export_split_bundle(out, "tiny-pruned", e, CompressAIStyleBottleneck(3), trunk, heads, test,
                              [0.5] * 3, [0.25] * 3, n_ref=2, batch=4, engines=engines, quiet=True)
    assert m["latent"]["channels"] == 3
    assert os.path.exists(os.path.join(out, "tiny-pruned", "encoder.onnx"))


def test_snapper_gives_the_ratio_of_the_kept_channels():
    e = encoder(width=48)
    snap = C.snapper("channels-layers", e)
    x = snap([0.3, 0.8])
    assert x == pytest.approx([1 - 32 / 48, 1 - 8 / 48])
    p = C.apply_strategy("channels-layers", e, x, None, saliency="l1")[0]
    assert K.widths(p)[:2] == (32, 8)
    assert list(snap(x)) == list(x)  # a snapped point is its own snap
    assert C.snapper("channels+magnitude", e)([0.3, 0.37])[1] == 0.37
