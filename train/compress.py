"""Compression schemes for the Entropic Student's edge encoder (Condensa,
Joseph et al., MLSys 2020: strategies composed of elementary schemes, each a
function of a few hyperparameters), and the short distillation fine-tune that
follows them.

The encoder is models.Encoder's layout: Conv (3 -> w0, k5 s2), GDN(w0),
Conv (w0 -> w1, k5 s2), GDN(w1), Conv (w1 -> C, k2), no biases. Schemes:

- structured channel pruning (`prune_channels`): removes whole hidden
  channels of the first two convolutions, with their GDN rows and columns and
  the next convolution's input slices, so the graph shrinks and runs faster
  in a dense engine. The latent's C channels are kept, so the bundle's
  entropy tables and the cloud side stay valid. Channels are ranked by a
  saliency (`saliency`): "l1", the L1 norm of the channel's filter (Li et al.,
  ICLR 2017), or "act", the mean magnitude of the channel's GDN output on
  calibration images times the L1 norm of the weights that read it.
- unstructured magnitude pruning (`magnitude_masks`): zeroes the smallest
  convolution weights of the encoder (one global threshold), for size; a
  dense engine runs it no faster.

`finetune` then distils the uncompressed encoder's latent into the compressed
one (relative MSE), keeping the masks of magnitude pruning applied.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from .losses import relative_mse
from .models import GDN

HIDDEN = (0, 2)  # indices in Encoder.layers of the convolutions whose outputs can be pruned


def check_layout(encoder):
    """The encoder's layers (Conv, GDN, Conv, GDN, Conv), or a ValueError."""
    layers = list(encoder.layers)
    kinds = [type(m) for m in layers]
    if kinds != [nn.Conv2d, GDN, nn.Conv2d, GDN, nn.Conv2d] or any(layers[i].bias is not None for i in (0, 2, 4)):
        raise ValueError(f"encoder layout {[k.__name__ for k in kinds]}: want Conv, GDN, Conv, GDN, Conv without biases")
    return layers


def widths(encoder):
    """The hidden widths (w0, w1) and the latent channels of an encoder."""
    layers = check_layout(encoder)
    return layers[0].out_channels, layers[2].out_channels, layers[4].out_channels


def kept_count(n, ratio, multiple=4):
    """How many of n channels remain after removing about ratio of them:
    rounded to a multiple of `multiple` (vector-friendly widths), at least `multiple`."""
    if not 0 <= ratio < 1:
        raise ValueError(f"pruning ratio {ratio}: want 0 <= ratio < 1")
    keep = int(round(n * (1 - ratio) / multiple)) * multiple
    return max(multiple, min(n, keep))


@torch.no_grad()
def saliency(encoder, kind="act", calib=None):
    """One score per hidden channel of each prunable layer: [(w0,), (w1,)] tensors."""
    layers = check_layout(encoder)
    if kind == "l1":
        return [layers[i].weight.abs().sum((1, 2, 3)) for i in HIDDEN]
    if kind != "act":
        raise ValueError(f"saliency {kind!r}: want 'l1' or 'act'")
    if calib is None:
        raise ValueError("saliency 'act' needs calibration images")
    scores, h = [], calib
    for i, m in enumerate(layers[:4]):
        h = m(h)
        if i in (1, 3):  # after each GDN: mean |activation| x L1 of the weights that read the channel
            reader = layers[i + 1].weight.abs().sum((0, 2, 3))
            scores.append(h.abs().mean((0, 2, 3)) * reader)
    return scores


def _conv_like(conv, weight):
    c = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size, conv.stride, conv.padding, bias=False)
    c.weight.data.copy_(weight)
    return c


def _gdn_subset(gdn, idx):
    g = GDN(len(idx), inverse=gdn.inverse)
    with torch.no_grad():  # the reparametrisations are elementwise, so the raw parameters slice exactly
        g.beta.copy_(gdn.beta[idx])
        g.gamma.copy_(gdn.gamma[idx][:, idx])
    return g


@torch.no_grad()
def prune_channels(encoder, keep0, keep1):
    """A new encoder with only the hidden channels keep0 (first layer) and
    keep1 (second layer), index tensors; the latent's channels are all kept."""
    layers = check_layout(encoder)
    keep0, keep1 = torch.as_tensor(keep0).sort().values, torch.as_tensor(keep1).sort().values
    out = copy.deepcopy(encoder)
    w0, w1, w2 = (layers[i].weight for i in (0, 2, 4))
    out.layers = nn.Sequential(
        _conv_like(layers[0], w0[keep0]), _gdn_subset(layers[1], keep0),
        _conv_like(layers[2], w1[keep1][:, keep0]), _gdn_subset(layers[3], keep1),
        _conv_like(layers[4], w2[:, keep1]))
    return out


def structured(encoder, ratios, kind="act", calib=None, multiple=4):
    """The strategy "prune about ratios[i] of hidden layer i's channels by saliency"
    (a single number prunes both layers by the same ratio, as Condensa's one global ratio)."""
    if isinstance(ratios, (int, float)):
        ratios = (ratios, ratios)
    scores = saliency(encoder, kind, calib)
    keep = [s.argsort(descending=True)[:kept_count(len(s), r, multiple)] for s, r in zip(scores, ratios)]
    return prune_channels(encoder, *keep)


def conv_weights(encoder):
    return [m.weight for m in encoder.modules() if isinstance(m, nn.Conv2d)]


@torch.no_grad()
def magnitude_masks(encoder, sparsity):
    """{weight: 0/1 mask} zeroing the fraction `sparsity` of the encoder's
    convolution weights of least magnitude (one global threshold); applied."""
    if not 0 <= sparsity < 1:
        raise ValueError(f"sparsity {sparsity}: want 0 <= sparsity < 1")
    ws = conv_weights(encoder)
    flat = torch.cat([w.abs().reshape(-1) for w in ws])
    k = int(math.floor(sparsity * flat.numel()))
    thresh = flat.kthvalue(k).values if k > 0 else flat.new_tensor(-1.0)
    masks = {w: (w.abs() > thresh).float() for w in ws}
    apply_masks(masks)
    return masks


@torch.no_grad()
def apply_masks(masks):
    for w, m in masks.items():
        w.mul_(m)


def parameters(encoder):
    """(parameters, nonzero parameters) of an encoder."""
    ps = list(encoder.parameters())
    return sum(p.numel() for p in ps), sum(int((p != 0).sum()) for p in ps)


def finetune(encoder, images, targets, steps, batch=32, lr=1e-3, masks=None, seed=0, log=None):
    """Distils targets (the uncompressed encoder's latents of images, both
    tensors) into encoder for steps Adam steps with a cosine learning rate;
    masks (from magnitude_masks) are applied after each step. Returns the
    last loss."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(encoder.parameters(), lr=lr)
    encoder.train()
    loss = torch.tensor(float("nan"))
    n = len(images)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / max(1, steps)))
        idx = torch.randint(0, n, (batch,), generator=g)
        loss = relative_mse(encoder(images[idx]), targets[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if masks:
            apply_masks(masks)
        if log and (step % 50 == 0 or step == steps - 1):
            log(step, float(loss))
    encoder.eval()
    return float(loss)
