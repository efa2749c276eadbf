"""The Compression Score of GAN-MC (Liu, Fusi, Mackey, ICLR 2019) for a
candidate compression set, with our teacher and a fixed small student.

A compression set is a set of scenes labelled by the teacher's classification
logits. The score of a candidate set C against a reference set R (real training
scenes of the same size):

    1. a fixed small student (SmallStudent), initialised from a fixed seed, is
       trained for PASSES passes over C (a seeded permutation per pass, batches
       of BATCH, Adam at LR with a cosine decay), regressing the teacher's
       logits (MSE). The paper trains one pass over a large set; one pass over
       our few thousand scenes left the student at chance (docs/GAN-MC.md);
    2. its top-1 on the real test scenes against their true labels is a_C;
    3. the same student from the same seed, trained the same way on R, gives a_R;
    4. score = a_C / a_R. Above 1: C is a better compression set than R.

docs/GAN-MC.md states the sizes and seeds used.
"""
from __future__ import annotations

import math

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import data as D
from . import onnxcheck
from .pipeline import to_input

BATCH = 64
LR = 2e-3
PASSES = 16


class OnnxTeacher:
    """The shipped teacher (a models/zoo bundle: trunk.onnx + head_classify.onnx),
    run by train.onnxcheck's interpreter, so no PyTorch checkpoint is needed."""

    def __init__(self, bundle: str):
        self.trunk = onnx.load(f"{bundle}/trunk.onnx")
        self.head = onnx.load(f"{bundle}/head_classify.onnx")

    @torch.no_grad()
    def logits(self, images_u8: np.ndarray, batch: int = 100) -> np.ndarray:
        """uint8 scenes (N, H, W, 3) -> classification logits float32 (N, classes)."""
        out = []
        for i in range(0, len(images_u8), batch):
            f = onnxcheck.run_model(self.trunk, {"image": to_input(images_u8[i:i + batch])})["features"]
            out.append(onnxcheck.run_model(self.head, {"features": f})["logits"].numpy())
        return np.concatenate(out).astype(np.float32)


class SmallStudent(nn.Module):
    """The fixed small student: the scene average-pooled to 48 x 48, four 3x3
    conv + BN + ReLU layers (32 channels stride 1, then 64, 96, 128 stride 2),
    global average pooling, a linear layer."""

    def __init__(self, classes: int = D.NUM_CLASSES):
        super().__init__()
        layers, cin = [nn.AvgPool2d(2)], 3
        for cout, stride in ((32, 1), (64, 2), (96, 2), (128, 2)):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(self.body(x).mean(dim=(2, 3)))


def train_student(images_u8: np.ndarray, targets: np.ndarray, seed: int,
                  batch: int = BATCH, lr: float = LR, passes: int = PASSES) -> SmallStudent:
    """passes passes over (images, teacher logits) from seed, regressing the logits (MSE)."""
    torch.manual_seed(seed)
    model = SmallStudent(targets.shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    per_pass = math.ceil(len(images_u8) / batch)
    perm = np.concatenate([np.pad(rng.permutation(len(images_u8)), (0, per_pass * batch - len(images_u8)),
                                  constant_values=-1) for _ in range(passes)])
    steps = per_pass * passes
    model.train()
    for k in range(steps):
        idx = np.sort(perm[k * batch:(k + 1) * batch])
        idx = idx[idx >= 0]  # a pass's last batch may be short
        for grp in opt.param_groups:
            grp["lr"] = lr * 0.5 * (1 + math.cos(math.pi * k / steps))
        loss = F.mse_loss(model(to_input(images_u8[idx])), torch.from_numpy(targets[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@torch.no_grad()
def top1(model: nn.Module, images_u8: np.ndarray, labels: np.ndarray, batch: int = 250) -> float:
    """Top-1 of model on scenes against their true labels."""
    hits = 0
    for i in range(0, len(labels), batch):
        hits += int((model(to_input(images_u8[i:i + batch])).argmax(1).numpy() == labels[i:i + batch]).sum())
    return hits / len(labels)


def student_top1(compression_set, test, seed: int) -> float:
    """Test top-1 of the small student trained for one pass on compression_set from seed."""
    return top1(train_student(*compression_set, seed), *test)


def compression_score(candidate, reference, test, seed: int):
    """The Compression Score of candidate against reference (module doc).

    candidate, reference: (uint8 scenes (N, H, W, 3), teacher logits (N, classes));
    test: (uint8 scenes, true labels). Returns dict(score, top1, top1_reference).
    """
    a_c, a_r = student_top1(candidate, test, seed), student_top1(reference, test, seed)
    return {"score": a_c / a_r if a_r > 0 else float("nan"), "top1": a_c, "top1_reference": a_r}


def mixup(images_u8: np.ndarray, seed: int) -> np.ndarray:
    """The augmentation baseline: each scene blended with another scene of the set
    (a seeded permutation) at a weight lambda ~ U(0, 1) per scene; the teacher then
    labels the blended scene like any other candidate."""
    rng = np.random.default_rng(seed)
    other = rng.permutation(len(images_u8))
    lam = rng.random(len(images_u8)).astype(np.float32)[:, None, None, None]
    mixed = lam * images_u8.astype(np.float32) + (1 - lam) * images_u8[other].astype(np.float32)
    return np.clip(np.round(mixed), 0, 255).astype(np.uint8)
