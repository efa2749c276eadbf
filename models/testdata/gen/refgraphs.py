#!/usr/bin/env python3
"""Writes the reference ONNX graphs that the engine tests run.

Reproducible: fixed seeds, one thread, torch.onnx.export at opset 13 with a
dynamic batch axis on every input and output. Run from the repository root:

    /usr/bin/python3 models/testdata/gen/refgraphs.py [OUTDIR]

(default OUTDIR: models/testdata). Needs Debian's python3-torch and python3-onnx.
"""
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

OPSET = 13


class GDN(nn.Module):
    """CompressAI's GDN: y = x / sqrt(beta + conv1x1(x^2, gamma)).

    beta is added separately (not as the conv bias) so that the export carries
    the Add of the issue's GDN pattern; square picks x*x (Mul) or x**2 (Pow).
    """

    def __init__(self, c, square):
        super().__init__()
        self.square = square
        self.beta = nn.Parameter(1.0 + 0.1 * torch.rand(c))
        self.gamma = nn.Parameter(0.1 * torch.eye(c) + 0.01 * torch.rand(c, c))

    def forward(self, x):
        x2 = x * x if self.square == "mul" else x ** 2
        norm = F.conv2d(x2, self.gamma[:, :, None, None]) + self.beta[None, :, None, None]
        return x / torch.sqrt(norm)


class ESEncoder(nn.Module):
    """The Entropic Student's encoder: 3 -> 96 -> 48 -> 24 channels, no biases."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 96, 5, stride=2, padding=2, bias=False)
        self.g1 = GDN(96, "pow")
        self.c2 = nn.Conv2d(96, 48, 5, stride=2, padding=2, bias=False)
        self.g2 = GDN(48, "mul")
        self.c3 = nn.Conv2d(48, 24, 2, stride=1, padding=0, bias=False)

    def forward(self, x):
        return self.c3(self.g2(self.c2(self.g1(self.c1(x)))))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.proj = None
        if stride != 1 or cin != cout:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = self.b2(self.c2(y))
        s = x if self.proj is None else self.proj(x)
        return F.relu(y + s)


class ClassHead(nn.Module):
    """ResNet-style classification head on the latent."""

    def __init__(self, cin=24, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(cin, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        self.l1 = Block(32, 32, 1)
        self.l2 = Block(32, 64, 2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, classes)

    def forward(self, x):
        y = self.pool(self.l2(self.l1(self.stem(x))))
        return self.fc(torch.flatten(y, 1))


class DetHead(nn.Module):
    """CenterNet-style detection head: heatmap (sigmoid), size and offset."""

    def __init__(self, cin=24, classes=3):
        super().__init__()
        self.trunk = nn.Sequential(nn.Conv2d(cin, 64, 3, 1, 1), nn.ReLU(),
                                   nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU())
        self.hm = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, classes, 1))
        self.wh = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 2, 1))
        self.off = nn.Sequential(nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.Conv2d(32, 2, 1))
        self.hm[-1].bias.data.fill_(-2.19)

    def forward(self, x):
        t = self.trunk(x)
        return torch.sigmoid(self.hm(t)), self.wh(t), self.off(t)


class SegHead(nn.Module):
    """Segmentation head: ConvTranspose, bilinear and nearest Resize."""

    def __init__(self, cin=24, classes=5):
        super().__init__()
        self.c1 = nn.Conv2d(cin, 48, 3, 1, 1)
        self.bn = nn.BatchNorm2d(48)
        self.up1 = nn.ConvTranspose2d(48, 32, 4, 2, 1, bias=False)
        self.c2 = nn.Conv2d(32, 32, 3, 1, 1)
        self.c3 = nn.Conv2d(32, 16, 3, 1, 1)
        self.cls = nn.Conv2d(16, classes, 1)

    def forward(self, x):
        y = F.relu(self.bn(self.c1(x)))
        y = F.relu(self.up1(y))
        y = F.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)
        y = F.relu(self.c2(y))
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.relu(self.c3(y))
        y = self.cls(y)
        return F.interpolate(y, size=(x.shape[2] * 8 + 3, x.shape[3] * 8 + 3), mode="bilinear", align_corners=True)


class OpsGraph(nn.Module):
    """Covers the ops the other graphs leave out."""

    def __init__(self, c=8):
        super().__init__()
        self.bn = nn.BatchNorm2d(c)
        self.grouped = nn.Conv2d(c, 2 * c, 3, 1, (1, 2), groups=2)
        self.depthwise = nn.Conv2d(2 * c, 2 * c, 3, 2, 1, groups=2 * c)
        self.dilated = nn.Conv2d(2 * c, c, (3, 2), 1, 2, dilation=2, bias=False)
        self.strided = nn.Conv2d(c, c, 3, 3, 0)
        self.fc = nn.Linear(c * 4, 6)
        self.w = nn.Parameter(torch.randn(6, 5))
        for m in (self.bn,):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)

    def forward(self, x, z):
        n = x.shape[0]
        y = self.bn(F.leaky_relu(x, 0.1))
        y = F.relu6(self.grouped(y))
        y = F.relu(self.depthwise(y))
        y = self.dilated(y)
        a = F.max_pool2d(y, 3, 2, 1, ceil_mode=True)
        b = F.avg_pool2d(y, 3, 2, 1, ceil_mode=False, count_include_pad=False)
        c = F.avg_pool2d(y, 2, 2)
        cat = torch.cat([a[:, :, : c.shape[2], : c.shape[3]], c], 1)
        sm = torch.softmax(cat, dim=1)
        t = sm.permute(0, 2, 3, 1)
        e = torch.exp(torch.clamp(t, -1.0, 0.5)) - torch.round(t * 4.0)
        m = e.mean(dim=(1, 2), keepdim=True)
        r = torch.sqrt(torch.abs(b - b.mean(dim=1, keepdim=True)) + 1.0) ** 1.5
        s = self.strided(x)
        flat = s.reshape(n, -1)[:, : self.fc.in_features]
        h = self.fc(flat)
        h = h @ self.w
        h = h / (1.0 + torch.exp(-h))
        zeros = torch.zeros(n, 5)
        h = torch.cat([h.unsqueeze(1), zeros.unsqueeze(1) + z.squeeze(1)], 1)
        rows = torch.flatten(r, 1)
        # e - m alone cancels to a few ulps of e (ill-conditioned); keep e - m/2.
        return e - 0.5 * m, h.float(), rows[:, 1:7] * 2.0


def export(model, inputs, names, outputs, path, dynamic_axes=None, fold=True):
    model.eval()
    axes = {nm: {0: "batch"} for nm in names + outputs}
    if dynamic_axes:
        axes.update(dynamic_axes)
    torch.onnx.export(model, inputs, path, opset_version=OPSET, input_names=names,
                      output_names=outputs, dynamic_axes=axes, do_constant_folding=fold)
    size = os.path.getsize(path)
    print(f"{path}: {size} bytes")


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "models/testdata"
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(1)
    with torch.no_grad():
        torch.manual_seed(1)
        enc = ESEncoder()
        export(enc, (torch.rand(1, 3, 224, 224),), ["image"], ["latent"], f"{out}/es_encoder_224.onnx")
        export(enc, (torch.rand(1, 3, 64, 64),), ["image"], ["latent"], f"{out}/es_encoder_64.onnx")

        torch.manual_seed(2)
        cls = ClassHead()
        randomize_bn(cls)
        export(cls, (torch.randn(1, 24, 28, 28),), ["latent"], ["logits"], f"{out}/cls_head.onnx")

        torch.manual_seed(3)
        det = DetHead()
        export(det, (torch.randn(1, 24, 16, 16),), ["latent"], ["heatmap", "size", "offset"], f"{out}/det_head.onnx")

        torch.manual_seed(4)
        seg = SegHead()
        randomize_bn(seg)
        export(seg, (torch.randn(1, 24, 8, 8),), ["latent"], ["mask"], f"{out}/seg_head.onnx")

        torch.manual_seed(5)
        ops = OpsGraph()
        export(ops, (torch.randn(1, 8, 16, 16), torch.randn(1, 1, 5)), ["x", "z"], ["e", "h", "rows"],
               f"{out}/ops.onnx", fold=False)


if __name__ == "__main__":
    main()
