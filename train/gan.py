"""A class-conditional GAN for 28 x 28 Fashion-MNIST garments (AC-GAN, Odena et
al. 2017, the kind GAN-MC used), small enough to train on two CPU cores.

The generator maps a latent vector and a class to a garment in [-1, 1]; the
discriminator returns a real/fake logit and class logits (the auxiliary
classifier). Both are DCGAN-style (strided convolutions, batch norm in the
generator, LeakyReLU in the discriminator).

    python3 -m train.gan --out train/runs/gan.pt --iters 3000

garments() turns a trained generator into a uint8 garment pool (N, 28, 28) with
its labels, the same format as data.load_fmnist, so the scene composition of
train/data.py takes generated garments in place of real ones.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as D
from .config import CONFIG

LATENT = 64


class Generator(nn.Module):
    """(z (B, LATENT), class (B,)) -> garment (B, 1, 28, 28) in [-1, 1]."""

    def __init__(self, latent: int = LATENT, width: int = 64, classes: int = D.NUM_CLASSES):
        super().__init__()
        self.latent = latent
        self.embed = nn.Embedding(classes, latent)
        self.fc = nn.Sequential(nn.Linear(latent, 2 * width * 7 * 7, bias=False),
                                nn.BatchNorm1d(2 * width * 7 * 7), nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ConvTranspose2d(width, 1, 4, 2, 1), nn.Tanh())
        self.width = width

    def forward(self, z, y):
        h = self.fc(z * self.embed(y))
        return self.up(h.view(-1, 2 * self.width, 7, 7))


class Discriminator(nn.Module):
    """garment (B, 1, 28, 28) -> (real/fake logit (B,), class logits (B, classes))."""

    def __init__(self, width: int = 64, classes: int = D.NUM_CLASSES):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2, inplace=True),
            nn.Flatten())
        self.adv = nn.Linear(2 * width * 7 * 7, 1)
        self.cls = nn.Linear(2 * width * 7 * 7, classes)

    def forward(self, x):
        h = self.body(x)
        return self.adv(h).squeeze(1), self.cls(h)


def to_unit(images_u8: np.ndarray) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [-1, 1]."""
    return torch.from_numpy(np.array(images_u8)).float().div(127.5).sub(1.0).unsqueeze(1)


def to_u8(x: torch.Tensor) -> np.ndarray:
    """float (N, 1, 28, 28) in [-1, 1] -> uint8 (N, 28, 28)."""
    return ((x.squeeze(1).clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def train(images: np.ndarray, labels: np.ndarray, iters: int, seed: int, batch: int = 64,
          width: int = 64, lr: float = 2e-4, log_every: int = 0):
    """Trains an AC-GAN on garments (uint8 (N, 28, 28), labels (N,)) for iters steps
    from seed; returns (generator, discriminator, history of (step, d_loss, g_loss, d_cls_acc))."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    g, d = Generator(width=width), Discriminator(width=width)
    opt_g = torch.optim.Adam(g.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    x_all, y_all = to_unit(images), torch.from_numpy(labels.astype(np.int64))
    history = []
    for step in range(iters):
        idx = torch.from_numpy(rng.integers(0, len(labels), batch))
        x, y = x_all[idx], y_all[idx]
        z = torch.randn(batch, g.latent)
        yf = torch.randint(0, D.NUM_CLASSES, (batch,))
        fake = g(z, yf)
        # discriminator: real -> 1 (one-sided label smoothing to 0.9), fake -> 0, both classified
        adv_r, cls_r = d(x)
        adv_f, cls_f = d(fake.detach())
        loss_d = (F.binary_cross_entropy_with_logits(adv_r, torch.full_like(adv_r, 0.9))
                  + F.binary_cross_entropy_with_logits(adv_f, torch.zeros_like(adv_f))
                  + F.cross_entropy(cls_r, y) + F.cross_entropy(cls_f, yf))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        # generator: fool the real/fake output and be classified as the asked class
        adv_f, cls_f = d(fake)
        loss_g = F.binary_cross_entropy_with_logits(adv_f, torch.ones_like(adv_f)) + F.cross_entropy(cls_f, yf)
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        if log_every and (step % log_every == 0 or step == iters - 1):
            acc = (cls_r.argmax(1) == y).float().mean().item()
            history.append((step, loss_d.item(), loss_g.item(), acc))
            print(f"gan step {step} d {loss_d.item():.3f} g {loss_g.item():.3f} d_cls_acc(real) {acc:.2f}",
                  flush=True)
    return g, d, history


@torch.no_grad()
def garments(g: Generator, per_class: int, seed: int):
    """A pool of per_class generated garments of each class: (uint8 (N, 28, 28), uint8 labels (N,))."""
    g.eval()
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(D.NUM_CLASSES).repeat_interleave(per_class)
    out = []
    for i in range(0, len(y), 500):
        yy = y[i:i + 500]
        out.append(to_u8(g(torch.randn(len(yy), g.latent, generator=gen), yy)))
    return np.concatenate(out), y.numpy().astype(np.uint8)


def save(g: Generator, path: str, meta: dict) -> None:
    tmp = path + ".tmp"
    torch.save({"generator": g.state_dict(), "width": g.width, "latent": g.latent, "meta": meta}, tmp)
    os.replace(tmp, path)


def load(path: str) -> Generator:
    ck = torch.load(path)
    g = Generator(latent=ck["latent"], width=ck["width"])
    g.load_state_dict(ck["generator"])
    return g.eval()


def sample_grid(g: Generator, path: str, per_class: int = 10, seed: int = 0) -> None:
    """A PNG of generated garments, one row per class (data.LABELS order), 2x upscaled."""
    from PIL import Image
    imgs, _ = garments(g, per_class, seed)
    rows = imgs.reshape(D.NUM_CLASSES, per_class, 28, 28).transpose(0, 2, 1, 3).reshape(D.NUM_CLASSES * 28, -1)
    Image.fromarray(rows).resize((rows.shape[1] * 2, rows.shape[0] * 2), Image.NEAREST).save(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=40)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--grid", help="write a sample grid PNG here")
    a = ap.parse_args()
    torch.set_num_threads(2)
    images, labels = D.load_fmnist("train")
    lo, hi = CONFIG["train_source"]  # the shipped models' training garments
    t0 = time.time()
    g, _, _ = train(images[lo:hi], labels[lo:hi], a.iters, a.seed, width=a.width, log_every=250)
    save(g, a.out, {"iters": a.iters, "seed": a.seed, "width": a.width, "source": [lo, hi], "seconds": time.time() - t0})
    print(f"gan: {a.iters} steps in {time.time() - t0:.0f} s -> {a.out}")
    if a.grid:
        sample_grid(g, a.grid)


if __name__ == "__main__":
    main()
