"""Small models in the style a researcher brings from CompressAI and
sc2bench, as factories for `python3 -m train.export_model` (docs/IMPORT.md),
plus a brief training loop so their metrics mean something:

    student_gdn1     sc2bench's FPBasedResNetBottleneck layout (GDN1 encoder,
                     inverse GDN1 decoder) and a torchvision-style ResNet
                     trunk, all three heads
    factorized_prior CompressAI's FactorizedPrior layout (GDN analysis,
                     ConvTranspose + inverse GDN synthesis), classification
                     and segmentation heads on the reconstruction
    classify_only    a GDN encoder and one classification head

They import CompressAI's GDN, GDN1 and EntropyBottleneck; here the tests'
stand-in (train/tests/compressai_stub) provides them on PYTHONPATH.

    python3 -m train.examples.byom student_gdn1 --steps 300 --out student.pt
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from compressai.entropy_models import EntropyBottleneck
from compressai.layers import GDN, GDN1
from torchvision.models.resnet import BasicBlock

from train import data as D
from train.metrics import centernet_targets

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


class Split(nn.Module):
    """encoder -> entropy bottleneck -> trunk -> heads, one module so that one
    state_dict holds it all."""

    def __init__(self, encoder, latent, trunk, heads):
        super().__init__()
        self.encoder = encoder
        self.entropy_bottleneck = EntropyBottleneck(latent)
        self.trunk = trunk
        self.heads = nn.ModuleDict(heads)

    def parts(self):
        """What train.export_model takes."""
        return {"model": self, "encoder": self.encoder, "entropy_bottleneck": self.entropy_bottleneck,
                "trunk": self.trunk, "heads": dict(self.heads)}


class ClassifyHead(nn.Sequential):
    """torchvision's ResNet head: global average pool, flatten, fully connected."""

    def __init__(self, channels, classes):
        super().__init__(nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(1), nn.Linear(channels, classes))


class DetectHead(nn.Module):
    """CenterNet outputs at the features' stride: heatmap, size, offset."""

    def __init__(self, channels, classes):
        super().__init__()
        self.heatmap, self.size, self.offset = (nn.Conv2d(channels, n, 1) for n in (classes, 2, 2))
        nn.init.constant_(self.heatmap.bias, -2.19)

    def forward(self, x):
        return self.heatmap(x), self.size(x), self.offset(x)


class SegmentHead(nn.Module):
    """1x1 class logits upsampled bilinearly to the input size."""

    def __init__(self, channels, classes, scale):
        super().__init__()
        self.out = nn.Conv2d(channels, classes, 1)
        self.scale = float(scale)

    def forward(self, x):
        x = self.out(x)
        return x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False)


def student_gdn1(latent=12):
    """FPBasedResNetBottleneck's encoder and decoder (k5 s2 + GDN1, k5 s2 +
    GDN1, k2; k2 + inverse GDN1, k2 + inverse GDN1, k2), narrowed, then a
    torchvision BasicBlock; features 32 x 24 x 24 for a 96 x 96 input."""
    c = latent
    encoder = nn.Sequential(
        nn.Conv2d(3, c * 4, 5, 2, 2, bias=False), GDN1(c * 4),
        nn.Conv2d(c * 4, c * 2, 5, 2, 2, bias=False), GDN1(c * 2),
        nn.Conv2d(c * 2, c, 2, 1, 0, bias=False))
    decoder = nn.Sequential(
        nn.Conv2d(c, 64, 2, 1, 1, bias=False), GDN1(64, inverse=True),
        nn.Conv2d(64, 32, 2, 1, 0, bias=False), GDN1(32, inverse=True),
        nn.Conv2d(32, 32, 2, 1, 1, bias=False))
    trunk = nn.Sequential(decoder, BasicBlock(32, 32))
    k = D.NUM_CLASSES
    return Split(encoder, c, trunk, {"classify": ClassifyHead(32, k), "detect": DetectHead(32, k),
                                     "segment": SegmentHead(32, k + 1, 4)}).parts()


def factorized_prior(n=16, m=24):
    """FactorizedPrior's g_a (k5 s2 + GDN, three times, k5 s2) and g_s
    (ConvTranspose k5 s2 + inverse GDN, three times, ConvTranspose to 3
    channels), with heads on the reconstruction."""
    g_a = nn.Sequential(
        nn.Conv2d(3, n, 5, 2, 2), GDN(n), nn.Conv2d(n, n, 5, 2, 2), GDN(n),
        nn.Conv2d(n, n, 5, 2, 2), GDN(n), nn.Conv2d(n, m, 5, 2, 2))

    def up(cin, cout):
        return nn.ConvTranspose2d(cin, cout, 5, 2, 2, output_padding=1)

    g_s = nn.Sequential(up(m, n), GDN(n, inverse=True), up(n, n), GDN(n, inverse=True),
                        up(n, n), GDN(n, inverse=True), up(n, 8))
    k = D.NUM_CLASSES
    classify = nn.Sequential(nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(), nn.MaxPool2d(2), ClassifyHead(16, k))
    return Split(g_a, m, g_s, {"classify": classify, "segment": SegmentHead(8, k + 1, 1)}).parts()


def classify_only(latent=8):
    """A GDN encoder, an entropy bottleneck and a single classification head."""
    encoder = nn.Sequential(nn.Conv2d(3, 16, 5, 2, 2), GDN(16), nn.Conv2d(16, latent, 5, 2, 2))
    trunk = nn.Sequential(nn.Conv2d(latent, 32, 3, 1, 1), GDN(32, inverse=True), nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU())
    return Split(encoder, latent, trunk, {"classify": ClassifyHead(32, D.NUM_CLASSES)}).parts()


def train_briefly(parts, steps, batch=32, seed=0, beta=0.01, log=print):
    """A few steps of the task losses plus beta times the rate on fresh
    Fashion-MNIST scenes, then update() of the bottleneck's tables."""
    torch.manual_seed(seed)
    model, eb = parts["model"], parts["entropy_bottleneck"]
    density = [p for name, p in eb.named_parameters() if name != "quantiles"]
    others = [p for name, p in model.named_parameters() if not name.startswith("entropy_bottleneck.")]
    opt = torch.optim.Adam([{"params": others, "lr": 2e-3}, {"params": density, "lr": 1e-2}])
    aux = torch.optim.Adam([eb.quantiles], lr=1e-2)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    model.train()
    t0 = time.time()
    for step, (d, _) in enumerate(D.stream("train", batch, steps, seed, (0, 55000))):
        x = (torch.from_numpy(d["images"]).permute(0, 3, 1, 2).float() / 255 - mean) / std
        y_hat, lik = eb(parts["encoder"](x))
        feats = parts["trunk"](y_hat)
        loss = beta * -torch.log2(lik).sum() / x.numel() * 3
        for name, head in parts["heads"].items():
            out = head(feats)
            if name == "classify":
                loss = loss + F.cross_entropy(out, torch.from_numpy(d["labels"]))
            elif name == "segment":
                loss = loss + F.cross_entropy(out, torch.from_numpy(d["masks"].astype("int64")))
            else:
                hm, _, _, _ = centernet_targets(d["boxes"], D.NUM_CLASSES, out[0].shape[-1], D.SIZE // out[0].shape[-1])
                loss = loss + F.mse_loss(torch.sigmoid(out[0]), torch.from_numpy(hm)) * 100
        opt.zero_grad()
        loss.backward()
        opt.step()
        a = eb.loss()
        aux.zero_grad()
        a.backward()
        aux.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"step {step}/{steps} loss {loss.item():.3f} aux {a.item():.1f} {time.time() - t0:.0f}s")
    model.eval()
    eb.update(force=True)
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", choices=["student_gdn1", "factorized_prior", "classify_only"])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--out", required=True, help="checkpoint (the model's state_dict)")
    args = ap.parse_args(argv)
    torch.set_num_threads(2)
    parts = globals()[args.model]()
    model = train_briefly(parts, args.steps)
    torch.save(model.state_dict(), args.out)


if __name__ == "__main__":
    main()
