"""A faithful re-implementation of CompressAI's factorized-prior entropy
bottleneck (compressai.entropy_models.EntropyBottleneck), its CDF table
construction (pmf_to_quantized_cdf from compressai/cpp_exts/ops/ops.cpp) and
its rANS encoder (Rans64 encode_with_indexes from
compressai/cpp_exts/rans/rans_interface.cpp), so that the tables and
bitstreams this package exports are the ones CompressAI would produce.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class _LowerBoundFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad_output):
        x, bound = ctx.saved_tensors
        pass_through = (x >= bound) | (grad_output < 0)
        return pass_through.type(grad_output.dtype) * grad_output, None


class LowerBound(nn.Module):
    """max(x, bound) whose gradient passes when x >= bound or it points up (CompressAI's LowerBound)."""

    def __init__(self, bound: float):
        super().__init__()
        self.register_buffer("bound", torch.Tensor([float(bound)]))

    def forward(self, x):
        return _LowerBoundFn.apply(x, self.bound)


def pmf_to_quantized_cdf(pmf, precision: int = 16):
    """CompressAI's pmf_to_quantized_cdf (ops.cpp), bit for bit.

    The C++ takes a std::vector<float>, so each p is a float32 and
    p * (1 << precision) is a float32 product rounded half away from zero
    (std::round); the sum is accumulated into a 32-bit int; frequencies are
    renormalised with 64-bit integer division; zero-frequency symbols steal one
    count from the smallest symbol whose frequency exceeds 1.
    """
    p32 = np.asarray(pmf, dtype=np.float32)
    scale = np.float32(1 << precision)
    prod = p32 * scale  # float32 multiply, as in C++
    freq = [0] + [int(math.floor(abs(float(v)) + 0.5)) * (1 if v >= 0 else -1) for v in prod]
    total = sum(freq)  # std::accumulate into int
    cdf = [((1 << precision) * f) // total for f in freq]
    for i in range(1, len(cdf)):
        cdf[i] += cdf[i - 1]
    cdf[-1] = 1 << precision
    n = len(cdf)
    for i in range(n - 1):
        if cdf[i] == cdf[i + 1]:
            best_freq, best_steal = None, -1
            for j in range(n - 1):
                f = cdf[j + 1] - cdf[j]
                if f > 1 and (best_freq is None or f < best_freq):
                    best_freq, best_steal = f, j
            if best_steal == -1:
                raise ValueError("pmf_to_quantized_cdf: no symbol to steal frequency from")
            if best_steal < i:
                for j in range(best_steal + 1, i + 1):
                    cdf[j] -= 1
            else:
                for j in range(i + 1, best_steal + 1):
                    cdf[j] += 1
    if cdf[0] != 0 or cdf[-1] != (1 << precision):
        raise AssertionError("pmf_to_quantized_cdf: bad end points")
    for i in range(n - 1):
        if cdf[i + 1] <= cdf[i]:
            raise AssertionError("pmf_to_quantized_cdf: cdf not strictly increasing")
    return cdf


class EntropyBottleneck(nn.Module):
    """CompressAI's EntropyBottleneck (factorized prior): same parameters
    (matrices, biases, factors, quantiles), buffers (_quantized_cdf, _offset,
    _cdf_length, target), forward, loss() and update()."""

    def __init__(self, channels: int, tail_mass: float = 1e-9, init_scale: float = 10,
                 filters=(3, 3, 3, 3), likelihood_bound: float = 1e-9, entropy_coder_precision: int = 16):
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.init_scale = float(init_scale)
        self.tail_mass = float(tail_mass)
        self.entropy_coder_precision = int(entropy_coder_precision)
        self.likelihood_lower_bound = LowerBound(likelihood_bound)
        self.register_buffer("_offset", torch.IntTensor())
        self.register_buffer("_quantized_cdf", torch.IntTensor())
        self.register_buffer("_cdf_length", torch.IntTensor())

        filters = (1,) + self.filters + (1,)
        scale = self.init_scale ** (1 / (len(self.filters) + 1))
        channels = self.channels
        for i in range(len(self.filters) + 1):
            init = np.log(np.expm1(1 / scale / filters[i + 1]))
            matrix = torch.Tensor(channels, filters[i + 1], filters[i])
            matrix.data.fill_(init)
            self.register_parameter(f"_matrix{i:d}", nn.Parameter(matrix))
            bias = torch.Tensor(channels, filters[i + 1], 1)
            nn.init.uniform_(bias, -0.5, 0.5)
            self.register_parameter(f"_bias{i:d}", nn.Parameter(bias))
            if i < len(self.filters):
                factor = torch.Tensor(channels, filters[i + 1], 1)
                nn.init.zeros_(factor)
                self.register_parameter(f"_factor{i:d}", nn.Parameter(factor))

        self.quantiles = nn.Parameter(torch.Tensor(channels, 1, 3))
        init = torch.Tensor([-self.init_scale, 0, self.init_scale])
        self.quantiles.data = init.repeat(self.quantiles.size(0), 1, 1)
        target = np.log(2 / self.tail_mass - 1)
        self.register_buffer("target", torch.Tensor([-target, 0, target]))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # the tables' shapes are only known after update(): take the saved ones (as CompressAI does)
        for name in ("_offset", "_quantized_cdf", "_cdf_length"):
            key = prefix + name
            if key in state_dict:
                getattr(self, name).resize_(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def _get_medians(self):
        return self.quantiles[:, :, 1:2]

    def _logits_cumulative(self, inputs, stop_gradient: bool):
        logits = inputs
        for i in range(len(self.filters) + 1):
            matrix = getattr(self, f"_matrix{i:d}")
            if stop_gradient:
                matrix = matrix.detach()
            logits = torch.matmul(F.softplus(matrix), logits)
            bias = getattr(self, f"_bias{i:d}")
            if stop_gradient:
                bias = bias.detach()
            logits = logits + bias
            if i < len(self.filters):
                factor = getattr(self, f"_factor{i:d}")
                if stop_gradient:
                    factor = factor.detach()
                logits = logits + torch.tanh(factor) * torch.tanh(logits)
        return logits

    def _likelihood(self, inputs, stop_gradient: bool = False):
        half = float(0.5)
        lower = self._logits_cumulative(inputs - half, stop_gradient=stop_gradient)
        upper = self._logits_cumulative(inputs + half, stop_gradient=stop_gradient)
        likelihood = torch.sigmoid(upper) - torch.sigmoid(lower)
        return likelihood, lower, upper

    def loss(self):
        """Auxiliary loss that fits the quantiles (CompressAI's aux_loss)."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.target).sum()

    def quantize(self, inputs, mode: str, means=None):
        if mode == "noise":
            half = float(0.5)
            noise = torch.empty_like(inputs).uniform_(-half, half)
            return inputs + noise
        outputs = inputs.clone()
        if means is not None:
            outputs -= means
        outputs = torch.round(outputs)
        if mode == "dequantize":
            if means is not None:
                outputs += means
            return outputs
        assert mode == "symbols", mode
        return outputs.int()

    def forward(self, x, training=None):
        """(y_hat, likelihoods) for x of shape (B, C, H, W)."""
        if training is None:
            training = self.training
        perm = [1, 0, 2, 3]
        x = x.permute(*perm).contiguous()
        shape = x.size()
        values = x.reshape(x.size(0), 1, -1)
        outputs = self.quantize(values, "noise" if training else "dequantize", self._get_medians())
        likelihood, _, _ = self._likelihood(outputs)
        likelihood = self.likelihood_lower_bound(likelihood)
        outputs = outputs.reshape(shape).permute(*perm).contiguous()
        likelihood = likelihood.reshape(shape).permute(*perm).contiguous()
        return outputs, likelihood

    @torch.no_grad()
    def _update_quantiles(self, search_radius=1e5, rtol=1e-4, atol=1e-3):
        """Sets the quantiles by bisection on the cumulative (CompressAI >= 1.2.5)."""
        shape = (self.channels, 1, 1)
        low = torch.full(shape, -search_radius)
        high = torch.full(shape, search_radius)

        def f(y):
            return self._logits_cumulative(y, stop_gradient=True)

        for i in range(len(self.target)):
            target = self.target[i]
            lo = torch.where(target <= f(high), low, high)
            hi = torch.where(f(lo) <= target, high, lo)
            while not torch.isclose(lo, hi, rtol=rtol, atol=atol).all():
                mid = (lo + hi) / 2
                f_mid = f(mid)
                lo = torch.where(f_mid <= target, mid, lo)
                hi = torch.where(f_mid >= target, mid, hi)
            self.quantiles[:, :, i] = ((lo + hi) / 2)[:, :, 0]

    @torch.no_grad()
    def update(self, force: bool = False, update_quantiles: bool = False) -> bool:
        """Builds _quantized_cdf, _cdf_length and _offset exactly as CompressAI does;
        update_quantiles first refits the quantiles by bisection, as CompressAI's
        update(update_quantiles=True) does."""
        if self._offset.numel() > 0 and not force:
            return False
        if update_quantiles:
            self._update_quantiles()
        medians = self.quantiles[:, 0, 1]
        minima = medians - self.quantiles[:, 0, 0]
        minima = torch.ceil(minima).int()
        minima = torch.clamp(minima, min=0)
        maxima = self.quantiles[:, 0, 2] - medians
        maxima = torch.ceil(maxima).int()
        maxima = torch.clamp(maxima, min=0)
        self._offset = -minima
        pmf_start = medians - minima
        pmf_length = maxima + minima + 1
        max_length = pmf_length.max().item()
        samples = torch.arange(max_length, device=pmf_start.device)
        samples = samples[None, :] + pmf_start[:, None, None]
        pmf, lower, upper = self._likelihood(samples, stop_gradient=True)
        pmf = pmf[:, 0, :]
        tail_mass = torch.sigmoid(lower[:, 0, :1]) + torch.sigmoid(-upper[:, 0, -1:])
        cdf = torch.zeros((len(pmf_length), max_length + 2), dtype=torch.int32)
        for i, p in enumerate(pmf):
            prob = torch.cat((p[: pmf_length[i]], tail_mass[i]), dim=0)
            c = pmf_to_quantized_cdf(prob.tolist(), self.entropy_coder_precision)
            cdf[i, : len(c)] = torch.tensor(c, dtype=torch.int32)
        self._quantized_cdf = cdf
        self._cdf_length = pmf_length + 2
        return True

    @classmethod
    def from_tables(cls, tables):
        """A bottleneck holding given tables (a bundle's entropy.json: cdfs,
        cdf_lengths, offsets, medians) as update() would have left them, for
        symbols(), compress() and the exporter; its density is untrained."""
        eb = cls(len(tables["medians"]))
        lengths = [int(n) for n in tables["cdf_lengths"]]
        cdf = torch.zeros((len(lengths), max(lengths)), dtype=torch.int32)
        for i, row in enumerate(tables["cdfs"]):
            if len(row) != lengths[i]:
                raise ValueError(f"entropy tables: row {i} has {len(row)} values, its length says {lengths[i]}")
            cdf[i, :len(row)] = torch.tensor(row, dtype=torch.int32)
        eb._quantized_cdf = cdf
        eb._cdf_length = torch.tensor(lengths, dtype=torch.int32)
        eb._offset = torch.tensor([int(o) for o in tables["offsets"]], dtype=torch.int32)
        with torch.no_grad():
            eb.quantiles[:, 0, 1] = torch.tensor(tables["medians"], dtype=torch.float32)
        return eb

    def medians(self):
        return self.quantiles[:, 0, 1].detach()

    def symbols(self, y):
        """round(y - medians) as int32, per channel (CompressAI's quantize 'symbols')."""
        m = self._get_medians().detach().reshape(1, -1, 1, 1)
        return torch.round(y - m).int()

    @torch.no_grad()
    def compress(self, y):
        """CompressAI's compress(): one rANS string per latent of y (B, C, H, W),
        the symbols coded in channel-major order with their channel's row."""
        lengths = self._cdf_length.tolist()
        cdfs = [row[:n] for row, n in zip(self._quantized_cdf.tolist(), lengths)]
        offsets = self._offset.tolist()
        return [compress_symbols(s.numpy(), cdfs, lengths, offsets) for s in self.symbols(y)]


RANS64_L = 1 << 31
PRECISION = 16
BYPASS_PRECISION = 4
MAX_BYPASS_VAL = (1 << BYPASS_PRECISION) - 1
_M32 = (1 << 32) - 1
_M64 = (1 << 64) - 1


def rans_encode_with_indexes(symbols, indexes, cdfs, cdf_lengths, offsets) -> bytes:
    """CompressAI's RansEncoder.encode_with_indexes (Rans64, 16-bit precision,
    4-bit bypass coding for values outside a row's range), little-endian words.

    symbols[i] is coded with row indexes[i]: value = symbol - offsets[row];
    values below 0 or at/above cdf_lengths[row] - 2 are escaped: the row's last
    entry, then the number of 4-bit groups (15 repeated while >= 15, then the
    rest), then the groups, low first, of the zig-zag raw value.
    """
    syms = []  # (start, range_or_bits, bypass)
    for s, idx in zip(symbols, indexes):
        cdf = cdfs[idx]
        max_value = cdf_lengths[idx] - 2
        value = int(s) - offsets[idx]
        raw_val = 0
        if value < 0:
            raw_val = -2 * value - 1
            value = max_value
        elif value >= max_value:
            raw_val = 2 * (value - max_value)
            value = max_value
        raw_val &= _M32
        syms.append((cdf[value], cdf[value + 1] - cdf[value], False))
        if value == max_value:
            if raw_val >> 28:
                # CompressAI's encoder never terminates for these (a 32-bit shift).
                raise ValueError(f"symbol {s}: escaped magnitude too large for CompressAI's coder")
            n_bypass = 0
            while (raw_val >> (n_bypass * BYPASS_PRECISION)) != 0:
                n_bypass += 1
            val = n_bypass
            while val >= MAX_BYPASS_VAL:
                syms.append((MAX_BYPASS_VAL, None, True))
                val -= MAX_BYPASS_VAL
            syms.append((val, None, True))
            for j in range(n_bypass):
                syms.append(((raw_val >> (j * BYPASS_PRECISION)) & MAX_BYPASS_VAL, None, True))
    x = RANS64_L
    words = []  # emitted backwards
    for start, freq, bypass in reversed(syms):
        if not bypass:
            x_max = ((RANS64_L >> PRECISION) << 32) * freq
            if x >= x_max:
                words.append(x & _M32)
                x >>= 32
            x = ((x // freq) << PRECISION) + (x % freq) + start
        else:
            freq = 1 << (16 - BYPASS_PRECISION)
            x_max = ((RANS64_L >> 16) << 32) * freq
            if x >= x_max:
                words.append(x & _M32)
                x >>= 32
            x = ((x << BYPASS_PRECISION) | start) & _M64
    words.append((x >> 32) & _M32)
    words.append(x & _M32)
    words.reverse()
    return b"".join(w.to_bytes(4, "little") for w in words)


def compress_symbols(sym_chw, cdfs, cdf_lengths, offsets) -> bytes:
    """rANS string of one latent's symbols (C, H, W) in channel-major order, row = channel."""
    C = sym_chw.shape[0]
    flat = np.asarray(sym_chw, dtype=np.int64).reshape(C, -1)
    idx = np.repeat(np.arange(C), flat.shape[1])
    return rans_encode_with_indexes(flat.reshape(-1).tolist(), idx.tolist(), cdfs, cdf_lengths, offsets)
