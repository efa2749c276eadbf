"""Dynamic convolution (Chen et al., "Dynamic Convolution: Attention over
Convolution Kernels", CVPR 2020): K parallel kernels W_k mixed per input by
an attention branch,

    pi(x) = softmax(FC2(ReLU(FC1(GAP(x)))) / T),   y = conv(x, sum_k pi_k(x) W_k).

The temperature T starts high (30 in the paper, near-uniform attention, so
all kernels learn) and is annealed to 1 early in training (`temperature_at`).

Two forms compute the same function and differ only in how the graph is
written for export (`DynamicConv2d.form`):

- "aggregate": the per-sample kernel sum_k pi_k W_k is computed (MatMul,
  Reshape) and used as the Conv weight. A Conv weight that is a computed
  tensor is legal ONNX; it is only written for batch 1 (its Reshape to the
  kernel's shape fails for any other batch, loudly).
- "mixed": the K kernels stacked into one Conv of K * C_out outputs, its
  output reshaped to (N, K, C_out, H, W), weighted by pi and summed over K.
  Exact by linearity for any batch, at K times the convolution's FLOPs, with
  static weights only.

Training uses the aggregated kernel for every sample at once (a grouped
convolution over the batch).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

FORMS = ("aggregate", "mixed")


def temperature_at(step: int, anneal_steps: int, start: float = 30.0, end: float = 1.0) -> float:
    """The attention temperature at a training step: linear from start to end
    over the first anneal_steps steps, then end (the paper: 30 -> 1 over the
    first 10 epochs)."""
    if anneal_steps <= 0 or step >= anneal_steps:
        return end
    return start + (end - start) * step / anneal_steps


class DynamicConv2d(nn.Module):
    """A Conv2d whose kernel is an attention-weighted sum of K kernels.

    Same arguments as nn.Conv2d (no groups or dilation), plus K and the
    hidden width of the attention branch (default max(4, in_channels // 4),
    the paper's reduction of 4)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=False,
                 K=4, hidden=None, temperature=1.0):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.K = K
        hidden = hidden or max(4, in_channels // 4)
        self.fc1 = nn.Linear(in_channels, hidden)
        self.fc2 = nn.Linear(hidden, K)
        self.weight = nn.Parameter(torch.empty(K, out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(K, out_channels)) if bias else None
        for k in range(K):  # each kernel initialised as nn.Conv2d would
            nn.init.kaiming_uniform_(self.weight.data[k], a=5 ** 0.5)
        self.temperature = float(temperature)
        self.form = "aggregate"

    def attention(self, x):
        """pi: (N, K), rows summing to 1."""
        # adaptive_avg_pool2d, not mean(dim=(2, 3)): it exports to GlobalAveragePool,
        # which the native engine runs in a third of ReduceMean's time here
        a = F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1).flatten(1)))
        return torch.softmax(self.fc2(a) / self.temperature, dim=1)

    def forward(self, x):
        pi = self.attention(x)
        K, co, ci, kh, kw = self.weight.shape
        if self.form == "mixed":
            w = self.weight.reshape(K * co, ci, kh, kw)
            b = None if self.bias is None else self.bias.reshape(K * co)
            y = F.conv2d(x, w, b, self.stride, self.padding)
            y = y.reshape(y.shape[0], K, co, y.shape[2], y.shape[3])
            return (y * pi.reshape(-1, K, 1, 1, 1)).sum(dim=1)
        if torch.onnx.is_in_onnx_export():
            # batch 1: the kernel is a computed tensor; the Reshape fails for N != 1
            w = torch.matmul(pi, self.weight.reshape(K, -1)).reshape(co, ci, kh, kw)
            b = None if self.bias is None else torch.matmul(pi, self.bias).reshape(co)
            return F.conv2d(x, w, b, self.stride, self.padding)
        n = x.shape[0]
        w = torch.matmul(pi, self.weight.reshape(K, -1)).reshape(n * co, ci, kh, kw)
        b = None if self.bias is None else torch.matmul(pi, self.bias).reshape(n * co)
        y = F.conv2d(x.reshape(1, n * ci, x.shape[2], x.shape[3]), w, b, self.stride, self.padding, groups=n)
        return y.reshape(n, co, y.shape[2], y.shape[3])

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, K=4, noise=0.0, generator=None):
        """A dynamic layer whose K kernels start as conv's kernel (plus
        relative Gaussian noise, so that they can diverge): it computes what
        conv computes whatever the attention, until training moves them."""
        d = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                bias=conv.bias is not None, K=K)
        with torch.no_grad():
            w = conv.weight.detach()
            for k in range(K):
                d.weight[k] = w + noise * w.std() * torch.randn(w.shape, generator=generator)
                if conv.bias is not None:
                    d.bias[k] = conv.bias.detach()
        return d

    def extra_repr(self):
        return (f"{self.in_channels}, {self.out_channels}, k={self.kernel_size}, s={self.stride}, "
                f"p={self.padding}, K={self.K}, T={self.temperature:g}, form={self.form}")


def dynamic_layers(module: nn.Module):
    return [m for m in module.modules() if isinstance(m, DynamicConv2d)]


def set_temperature(module: nn.Module, t: float):
    for m in dynamic_layers(module):
        m.temperature = float(t)


def set_form(module: nn.Module, form: str):
    if form not in FORMS:
        raise ValueError(f"form {form!r} is not one of {FORMS}")
    for m in dynamic_layers(module):
        m.form = form
