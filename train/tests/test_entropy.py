"""CDF construction and rANS bytes against CompressAI's own vectors."""
import json
import os

import numpy as np
import pytest
import torch

from train.entropy import EntropyBottleneck, compress_symbols, pmf_to_quantized_cdf, rans_encode_with_indexes
from train.tests.conftest import ROOT

VECTORS = os.path.join(ROOT, "entropy", "testdata", "compressai-rans-a.json")


@pytest.fixture(scope="module")
def vectors():
    with open(VECTORS) as f:
        return json.load(f)


def test_pmf_to_quantized_cdf_matches_compressai(vectors):
    assert len(vectors["pmf_to_cdf"]) > 0
    for i, entry in enumerate(vectors["pmf_to_cdf"]):
        got = pmf_to_quantized_cdf(entry["pmf"], vectors["precision"])
        assert got == entry["cdf"], f"channel {i}"


def test_cdf_table_rows(vectors):
    for row, entry, n in zip(vectors["cdfs"], vectors["pmf_to_cdf"], vectors["cdf_lengths"]):
        assert row[:n] == entry["cdf"]


@pytest.mark.parametrize("case", range(6))
def test_rans_bytes_match_compressai(vectors, case):
    c = vectors["cases"][case]
    got = rans_encode_with_indexes(c["symbols"], c["indexes"], vectors["cdfs"], vectors["cdf_lengths"],
                                   vectors["offsets"])
    assert got.hex() == c["encoded_hex"], c["name"]


def test_escape_too_large_is_rejected(vectors):
    with pytest.raises(ValueError):
        rans_encode_with_indexes([1 << 28], [0], vectors["cdfs"], vectors["cdf_lengths"], vectors["offsets"])


def test_update_builds_consistent_tables():
    torch.manual_seed(0)
    eb = EntropyBottleneck(3)
    eb.update(update_quantiles=True)
    C = 3
    assert eb._quantized_cdf.shape[0] == C
    for c in range(C):
        n = int(eb._cdf_length[c])
        row = eb._quantized_cdf[c, :n].tolist()
        assert row[0] == 0 and row[-1] == 1 << 16
        assert all(b > a for a, b in zip(row, row[1:]))
        assert int(eb._offset[c]) <= 0
    # a latent coded with the tables: symbols in range take fewer bytes than escaped ones
    y = torch.zeros(1, C, 4, 4)
    sym = eb.symbols(y)[0].numpy()
    small = compress_symbols(sym, eb._quantized_cdf.tolist(), eb._cdf_length.tolist(), eb._offset.tolist())
    big = compress_symbols(sym + 1000, eb._quantized_cdf.tolist(), eb._cdf_length.tolist(), eb._offset.tolist())
    assert 8 <= len(small) < len(big)


def test_forward_noise_and_rounding():
    torch.manual_seed(0)
    eb = EntropyBottleneck(2)
    y = torch.randn(2, 2, 3, 3) * 3
    eb.train()
    y_noisy, lik = eb(y)
    assert (y_noisy - y).abs().max() <= 0.5
    assert (lik > 0).all() and (lik <= 1).all()
    eb.eval()
    y_hat, _ = eb(y)
    med = eb.quantiles[:, 0, 1].detach().view(1, -1, 1, 1)
    assert torch.equal(y_hat, torch.round(y - med) + med)
    assert eb.loss().item() > 0


def test_state_dict_round_trip_with_tables():
    torch.manual_seed(0)
    eb = EntropyBottleneck(4)
    eb.update(update_quantiles=True)
    back = EntropyBottleneck(4)
    back.load_state_dict(eb.state_dict())
    assert torch.equal(back._quantized_cdf, eb._quantized_cdf)
    assert torch.equal(back._offset, eb._offset) and torch.equal(back._cdf_length, eb._cdf_length)
