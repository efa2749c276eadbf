"""GAN-MC's Compression Scores for four candidate compression sets of the
Fashion-MNIST scenes, against the shipped teacher (docs/GAN-MC.md).

    python3 -m train.gan_mc --runs train/runs/ganmc --cache train/cache

Steps, each seeded: the AC-GAN (train/gan.py) on the teacher's training garments,
unless its checkpoint is in --runs; a pool of generated garments; scene sets of
--n scenes each (a real reference set, a second real set, GAN scenes, real + GAN
half and half, mixup of the second real set); the teacher's logits for each
(cached in --runs); the small student's test top-1 for each set and each
--seeds student seed; the scores, as JSON in --runs and a Markdown table on stdout.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import data as D
from . import gan
from .compression_score import LR, OnnxTeacher, SmallStudent, mixup, student_top1, top1
from .pipeline import to_input
from .config import CONFIG

GAN_ITERS, GAN_SEED = 2000, 40
POOL_PER_CLASS, POOL_SEED = 600, 41
SEEDS = {"reference": 50, "real": 51, "gan": 52, "mixup": 53}


def generator(runs):
    """The AC-GAN's generator, trained (and checkpointed) if runs has none."""
    path = os.path.join(runs, f"gan-s{GAN_SEED}-i{GAN_ITERS}.pt")
    if not os.path.exists(path):
        images, labels = D.load_fmnist("train")
        lo, hi = CONFIG["train_source"]
        t0 = time.time()
        g, _, _ = gan.train(images[lo:hi], labels[lo:hi], GAN_ITERS, GAN_SEED, width=32, log_every=250)
        gan.save(g, path, {"iters": GAN_ITERS, "seed": GAN_SEED, "width": 32, "source": [lo, hi],
                           "seconds": time.time() - t0})
    return gan.load(path)


def scene_sets(g, n, runs):
    """The candidate sets' scenes (uint8) by name, n scenes each (cached in runs)."""
    path = os.path.join(runs, f"scenes-n{n}-g{GAN_SEED}-{GAN_ITERS}.npz")
    if os.path.exists(path):
        return dict(np.load(path))
    src = tuple(CONFIG["train_source"])
    pool = gan.garments(g, POOL_PER_CLASS, POOL_SEED)
    sets = {"reference": D.generate("train", n, SEEDS["reference"], src)["images"],
            "real": D.generate("train", n, SEEDS["real"], src)["images"],
            "gan": D.generate("train", n, SEEDS["gan"], garments=pool)["images"]}
    sets["mixup"] = mixup(sets["real"], SEEDS["mixup"])
    np.savez(path + ".tmp.npz", **sets)
    os.replace(path + ".tmp.npz", path)
    return sets


def labelled(teacher, sets, runs, n):
    """(scenes, teacher logits) by name; logits cached in runs. real+gan is the first
    half of real and the first half of gan."""
    out = {}
    for name, images in sets.items():
        path = os.path.join(runs, f"logits-{name}-n{n}-g{GAN_SEED}-{GAN_ITERS}.npy")
        if not os.path.exists(path):
            np.save(path, teacher.logits(images))
        out[name] = (images, np.load(path))
    h = n // 2
    out["real+gan"] = (np.concatenate([out["real"][0][:h], out["gan"][0][:n - h]]),
                       np.concatenate([out["real"][1][:h], out["gan"][1][:n - h]]))
    return out


def distil(real, fake, p_fake, steps, seed, batch=64, lr=LR):
    """The low-data study's student: SmallStudent trained for steps batches, each
    batch's share p_fake drawn from fake and the rest from real (both (scenes,
    teacher logits), sampled with replacement from seed), regressing the logits
    (MSE), Adam at lr with a cosine decay."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = SmallStudent(real[1].shape[1])
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    k_fake = int(round(p_fake * batch))
    model.train()
    for k in range(steps):
        for grp in opt.param_groups:
            grp["lr"] = lr * 0.5 * (1 + math.cos(math.pi * k / steps))
        ir = rng.integers(0, len(real[1]), batch - k_fake)
        parts = [(real[0][ir], real[1][ir])]
        if k_fake:
            jf = rng.integers(0, len(fake[1]), k_fake)
            parts.append((fake[0][jf], fake[1][jf]))
        x = np.concatenate([p[0] for p in parts])
        t = np.concatenate([p[1] for p in parts])
        loss = F.mse_loss(model(to_input(x)), torch.from_numpy(t))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def low_data(data, test, n_real, p_fakes, steps, seeds):
    """Test top-1 of students distilled from the first n_real real scenes, with a
    share p of each batch from the GAN scenes, for each p in p_fakes and each seed."""
    real = (data["real"][0][:n_real], data["real"][1][:n_real])
    return {p: [top1(distil(real, data["gan"], p, steps, s), *test) for s in seeds] for p in p_fakes}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", default="train/runs/ganmc")
    ap.add_argument("--cache", default="train/cache")
    ap.add_argument("--teacher", default="models/zoo/fmnist-teacher")
    ap.add_argument("--n", type=int, default=4000, help="scenes per candidate set")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0], help="small-student seeds")
    ap.add_argument("--scenes-png", help="write a grid of real and GAN scenes here")
    ap.add_argument("--garments-png", help="write a grid of generated garments here (train.gan's --grid)")
    ap.add_argument("--low-data", type=int, default=0, help="real scenes of the low-data study (0: skip it)")
    ap.add_argument("--p-fake", type=float, nargs="+", default=[0.0, 0.5], help="GAN shares of its batches")
    ap.add_argument("--steps", type=int, default=300, help="steps of its students")
    a = ap.parse_args()
    torch.set_num_threads(CONFIG["threads"])
    os.makedirs(a.runs, exist_ok=True)
    t0 = time.time()
    g = generator(a.runs)
    sets = scene_sets(g, a.n, a.runs)
    if a.garments_png:
        gan.sample_grid(g, a.garments_png)
    if a.scenes_png:
        scene_grid(sets, a.scenes_png)
    test_d = D.cached(a.cache, "test", CONFIG["test_scenes"], CONFIG["test_seed"])
    test = (test_d["images"], test_d["labels"])
    teacher = OnnxTeacher(a.teacher)
    data = labelled(teacher, sets, a.runs, a.n)
    teacher_top1 = float((teacher.logits(test[0]).argmax(1) == test[1]).mean())
    t_label = time.time() - t0
    acc = {name: [student_top1(data[name], test, s) for s in a.seeds] for name in data}
    scores = {name: [x / r for x, r in zip(acc[name], acc["reference"])] for name in data}
    res = {"n": a.n, "seeds": a.seeds, "teacher_top1": teacher_top1, "top1": acc, "score": scores,
           "seconds_labelling": t_label}
    if a.low_data:
        t1 = time.time()
        low = low_data(data, test, a.low_data, a.p_fake, a.steps, a.seeds)
        res["low_data"] = {"n_real": a.low_data, "gan_scenes": len(data["gan"][1]), "steps": a.steps,
                           "top1": {str(p): v for p, v in low.items()}, "seconds": time.time() - t1}
    res["seconds_total"] = time.time() - t0
    with open(os.path.join(a.runs, f"scores-n{a.n}.json"), "w") as f:
        json.dump(res, f, indent=1)
    print(f"teacher test top-1 {teacher_top1:.3f}; {a.n} scenes per set; student seeds {a.seeds}")
    print("| set | student top-1 per seed | Compression Score per seed | mean score |")
    print("|---|---|---|---|")
    for name in ["reference", "real", "gan", "real+gan", "mixup"]:
        print(f"| {name} | {' '.join(f'{x:.3f}' for x in acc[name])} | "
              f"{' '.join(f'{x:.3f}' for x in scores[name])} | {np.mean(scores[name]):.3f} |")
    if a.low_data:
        print(f"\nlow-data study: {a.low_data} real scenes, {a.steps} steps of batch 64, "
              f"{len(data['gan'][1])} GAN scenes")
        print("| GAN share of each batch | student test top-1 per seed | mean |")
        print("|---|---|---|")
        for p, v in low.items():
            print(f"| {p:g} | {' '.join(f'{x:.3f}' for x in v)} | {np.mean(v):.3f} |")
    print(f"wall time {res['seconds_total']:.0f} s (labelling and scenes {t_label:.0f} s)")


def scene_grid(sets, path, k=8):
    """A PNG: k real scenes above k GAN scenes."""
    from PIL import Image
    rows = [np.concatenate(list(sets[name][:k]), axis=1) for name in ("real", "gan")]
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


if __name__ == "__main__":
    main()
