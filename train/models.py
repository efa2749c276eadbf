"""The teacher (a small ResNet-style multi-task network) and the Entropic
Student that replaces the teacher's first stage by an encoder, a factorized
entropy bottleneck and a decoder (Matsubara et al., WACV 2022).

Layout shared by both:
  stage1 (teacher) / encoder+bottleneck+decoder (student): image -> 32 x 24 x 24 (stride 4)
  layer2: -> 64 x 12 x 12, layer3: -> 128 x 6 x 6
  fpn: top-down merge of layer3, layer2 and the stride-4 features -> "features" 48 x 24 x 24
  heads on features: classify (logits 10), detect (CenterNet at stride 4:
  heatmap 10 x 24 x 24 logits, size 2 x 24 x 24, offset 2 x 24 x 24),
  segment (mask_logits 11 x 96 x 96, bilinear upsampling x4).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .dynconv import DynamicConv2d
from .entropy import EntropyBottleneck, LowerBound
from .data import NUM_CLASSES

STRIDE = 4
FEAT = 48


class NonNegativeParametrizer(nn.Module):
    """CompressAI's NonNegativeParametrizer."""

    def __init__(self, minimum: float = 0, reparam_offset: float = 2 ** -18):
        super().__init__()
        self.minimum = float(minimum)
        self.reparam_offset = float(reparam_offset)
        pedestal = self.reparam_offset ** 2
        self.register_buffer("pedestal", torch.Tensor([pedestal]))
        bound = (self.minimum + self.reparam_offset ** 2) ** 0.5
        self.lower_bound = LowerBound(bound)

    def init(self, x):
        return torch.sqrt(torch.max(x + self.pedestal, self.pedestal))

    def forward(self, x):
        out = self.lower_bound(x)
        return out ** 2 - self.pedestal


class GDN(nn.Module):
    """CompressAI's GDN: y = x / sqrt(beta + gamma * x^2) (inverse: times sqrt)."""

    def __init__(self, in_channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegativeParametrizer(minimum=beta_min)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(in_channels)))
        self.gamma_reparam = NonNegativeParametrizer()
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(in_channels)))
        self.export_plain = False  # set by the exporter: plain ops, folded constants

    def forward(self, x):
        C = x.size(1)
        if self.export_plain:
            # constants folded from the reparametrisation; Mul, Conv, Sqrt, Div/Mul only
            norm = F.conv2d(x * x, self.gamma_c, self.beta_c)
            return x * torch.sqrt(norm) if self.inverse else x / torch.sqrt(norm)
        beta = self.beta_reparam(self.beta)
        gamma = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1)
        norm = F.conv2d(x ** 2, gamma, beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)

    def fold(self):
        """Freezes the reparametrised beta and gamma as constants for export."""
        with torch.no_grad():
            C = self.beta.numel()
            self.beta_c = self.beta_reparam(self.beta).detach().clone()
            self.gamma_c = self.gamma_reparam(self.gamma).reshape(C, C, 1, 1).detach().clone()
        self.export_plain = True


def conv_bn(cin, cout, k=3, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, k, s, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.down is None else self.down(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + idt)


class Trunk(nn.Module):
    """Everything after the stride-4 stage: layer2, layer3 and the FPN merge."""

    def __init__(self, c1=32, c2=64, c3=128):
        super().__init__()
        self.layer2 = nn.Sequential(BasicBlock(c1, c2, 2), BasicBlock(c2, c2))
        self.layer3 = nn.Sequential(BasicBlock(c2, c3, 2), BasicBlock(c3, c3))
        self.lat3 = nn.Conv2d(c3, FEAT, 1)
        self.lat2 = nn.Conv2d(c2, FEAT, 1)
        self.lat1 = nn.Conv2d(c1, FEAT, 1)
        self.smooth2 = conv_bn(FEAT, FEAT)
        self.smooth1 = conv_bn(FEAT, FEAT)

    def forward(self, f1, return_all=False):
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        p = self.lat3(f3)
        p = F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat2(f2)
        p = self.smooth2(p)
        p = F.interpolate(p, scale_factor=2.0, mode="nearest") + self.lat1(f1)
        p = self.smooth1(p)
        if return_all:
            return p, (f1, f2, f3)
        return p


class ClassifyHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = conv_bn(FEAT, 96, 3, 2)
        self.conv2 = conv_bn(96, 96, 3, 1)
        self.fc = nn.Linear(96, NUM_CLASSES)

    def forward(self, p):
        x = self.conv2(self.conv(p))
        x = x.mean(dim=(2, 3))
        return self.fc(x)


class DetectHead(nn.Module):
    """CenterNet: heatmap logits per class, box size (w, h) and centre offset, both in cells of STRIDE pixels."""

    def __init__(self):
        super().__init__()
        self.conv = conv_bn(FEAT, FEAT)
        self.heatmap = nn.Conv2d(FEAT, NUM_CLASSES, 1)
        self.size = nn.Conv2d(FEAT, 2, 1)
        self.offset = nn.Conv2d(FEAT, 2, 1)
        nn.init.constant_(self.heatmap.bias, -2.19)

    def forward(self, p):
        x = self.conv(p)
        return self.heatmap(x), self.size(x), self.offset(x)


class SegmentHead(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = conv_bn(FEAT, FEAT)
        self.out = nn.Conv2d(FEAT, NUM_CLASSES + 1, 1)

    def forward(self, p):
        x = self.out(self.conv(p))
        return F.interpolate(x, scale_factor=float(STRIDE), mode="bilinear", align_corners=False)


class Heads(nn.Module):
    def __init__(self):
        super().__init__()
        self.classify = ClassifyHead()
        self.detect = DetectHead()
        self.segment = SegmentHead()

    def forward(self, p):
        hm, sz, off = self.detect(p)
        return {"logits": self.classify(p), "heatmap": hm, "size": sz, "offset": off,
                "mask_logits": self.segment(p)}


class Teacher(nn.Module):
    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(conv_bn(3, 24, 3, 2), conv_bn(24, 32, 3, 2), BasicBlock(32, 32))
        self.trunk = Trunk()
        self.heads = Heads()

    def forward(self, x, return_feats=False):
        f1 = self.stage1(x)
        p, feats = self.trunk(f1, return_all=True)
        out = self.heads(p)
        if return_feats:
            return out, feats + (p,)
        return out


class Encoder(nn.Module):
    """Conv k5 s2 + GDN, Conv k5 s2 + GDN, Conv k2 to C channels, no biases (sc2bench's layout).

    dynamic: the indices (0, 1, 2) of the convolutions that are dynamic
    convolutions of K kernels (train/dynconv.py); same shapes either way."""

    def __init__(self, latent_channels: int, width: int = 32, dynamic=(), K: int = 4):
        super().__init__()
        specs = [(3, width, 5, 2, 2), (width, width, 5, 2, 2), (width, latent_channels, 2, 1, 0)]
        convs = [DynamicConv2d(*s, bias=False, K=K) if i in dynamic else nn.Conv2d(*s, bias=False)
                 for i, s in enumerate(specs)]
        self.layers = nn.Sequential(convs[0], GDN(width), convs[1], GDN(width), convs[2])

    def forward(self, x):
        return self.layers(x)


class Decoder(nn.Module):
    """Conv k2 + IGDN, Conv k2 + IGDN, Conv k2 back to the teacher's stride-4 width
    (sc2bench's layout), with biases and a final ReLU: the teacher's stride-4
    features it stands in for are non-negative, and without biases the decoder is
    an odd function of the latent, which cannot produce their offsets; then a
    residual 3x3 block (Refine)."""

    def __init__(self, latent_channels: int, out_channels: int = 32, width: int = 64, refine_width: int = 128):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Conv2d(latent_channels, width, 2, 1, 1), GDN(width, inverse=True),
            nn.Conv2d(width, out_channels, 2, 1, 0), GDN(out_channels, inverse=True),
            nn.Conv2d(out_channels, out_channels, 2, 1, 1), nn.ReLU())
        self.refine = Refine(out_channels, refine_width)

    def forward(self, z):
        return self.refine(self.layers(z))


class Refine(nn.Module):
    """A residual block of two 3x3 convolutions on the decoder's output, whose
    last batch norm starts at zero, so that the block starts as the identity on
    the non-negative features: it gives the decoder spatial context (its k2
    layers see 4 x 4 latent cells) and joins in stage 2 (see train/pipeline.py)."""

    def __init__(self, channels: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        return F.relu(x + self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))))


class Student(nn.Module):
    """The Entropic Student: encoder -> EntropyBottleneck -> decoder -> teacher's trunk and heads."""

    def __init__(self, latent_channels: int = 24, encoder_width: int = 32, decoder_width: int = 64,
                 refine_width: int = 128, dynamic=(), K: int = 4):
        super().__init__()
        self.latent_channels = latent_channels
        self.encoder = Encoder(latent_channels, width=encoder_width, dynamic=dynamic, K=K)
        self.entropy_bottleneck = EntropyBottleneck(latent_channels)
        self.decoder = Decoder(latent_channels, width=decoder_width, refine_width=refine_width)
        self.trunk = Trunk()
        self.heads = Heads()

    def forward(self, x, return_feats=False):
        y = self.encoder(x)
        y_hat, lik = self.entropy_bottleneck(y)
        f1 = self.decoder(y_hat)
        p, feats = self.trunk(f1, return_all=True)
        out = self.heads(p)
        out["likelihoods"] = lik
        if return_feats:
            return out, feats + (p,)
        return out
