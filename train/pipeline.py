"""Trains the teacher and the Entropic Students and exports the bundles.

    python3 -m train.pipeline --out models/zoo

Stages run in sequence and each one checkpoints to --runs (train/runs/); a
stage whose checkpoint exists is skipped, so a crash loses at most the stage
that was running. Checkpoint names carry a hash of the configuration the stage
depends on (train/config.py), so after a change of CONFIG the stages it
touches run again.
Everything is seeded, with a fixed number of iterations, so a rerun on the same
software reproduces the same weights (CPU, 2 threads).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import numpy as np
import torch

from . import data as D
from . import export
from .config import CONFIG, MEAN, STD, beta_tag, student_checkpoint, teacher_checkpoint
from .dynconv import set_temperature, temperature_at
from .losses import kd_loss, relative_mse, task_loss
from .metrics import MetricAccumulator, centernet_targets
from .models import STRIDE, Student, Teacher


def log(runs, msg):
    line = f"{time.strftime('%H:%M:%S')} {msg}"
    print(line, flush=True)
    with open(os.path.join(runs, "log.txt"), "a") as f:
        f.write(line + "\n")


def to_input(images_u8):
    """uint8 (B, H, W, 3) -> normalised float32 (B, 3, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).permute(0, 3, 1, 2).float() / 255.0
    m = torch.tensor(MEAN).view(1, 3, 1, 1)
    s = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - m) / s


def batches(d, batch, iters, seed, augment=True):
    """Yields (x, masks, labels, boxes, targets) for iters steps: a fresh seeded
    permutation per epoch and random horizontal flips."""
    rng = np.random.default_rng(seed)
    n = len(d["labels"])
    perm, pos = rng.permutation(n), 0
    for _ in range(iters):
        if pos + batch > n:
            perm, pos = rng.permutation(n), 0
        idx = perm[pos:pos + batch]
        pos += batch
        yield training_batch(rng, d["images"][idx], d["masks"][idx], d["labels"][idx],
                             [d["boxes"][i] for i in idx], augment)


def stream_batches(batch, iters, seed):
    """Like batches, on fresh scenes from the training garments at every step
    (D.stream), so nothing can be learnt by heart."""
    for d, rng in D.stream("train", batch, iters, seed, tuple(CONFIG["train_source"])):
        yield training_batch(rng, d["images"], d["masks"], d["labels"], d["boxes"], True)


def scene_source(train, scenes, iters, seed):
    """Training batches from the scene set train[scenes], or fresh ones when scenes is "stream"."""
    if scenes == "stream":
        return stream_batches(CONFIG["batch"], iters, seed)
    return batches(train[scenes], CONFIG["batch"], iters, seed)


def training_batch(rng, imgs, masks, labels, boxes, augment):
    """Tensors for one step, each scene flipped horizontally with probability 1/2 (rng)."""
    if augment:
        flip = rng.random(len(labels)) < 0.5
        imgs = np.where(flip[:, None, None, None], imgs[:, :, ::-1], imgs)
        masks = np.where(flip[:, None, None], masks[:, :, ::-1], masks)
        boxes = [[[D.SIZE - b[2], b[1], D.SIZE - b[0], b[3], b[4]] for b in bx] if f else bx
                 for bx, f in zip(boxes, flip)]
    hm, sz, off, ind = centernet_targets(boxes, D.NUM_CLASSES, D.SIZE // STRIDE)
    return (to_input(imgs), torch.from_numpy(masks.astype(np.int64)),
            torch.from_numpy(labels), boxes,
            (torch.from_numpy(hm), torch.from_numpy(sz), torch.from_numpy(off), torch.from_numpy(ind)))


def lr_at(step, iters, base, warmup):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(1, iters - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * t))


@torch.no_grad()
def evaluate(model, d, batch=100):
    model.eval()
    acc = MetricAccumulator(D.NUM_CLASSES)
    n = len(d["labels"])
    for i in range(0, n, batch):
        out = model(to_input(d["images"][i:i + batch]))
        acc.add({k: v.numpy() for k, v in out.items()}, d["labels"][i:i + batch],
                d["boxes"][i:i + batch], d["masks"][i:i + batch])
    return acc.result()


def load_data(cache):
    c = CONFIG
    t0 = time.time()
    train = [D.cached(cache, "train", c["train_scenes"], seed, tuple(c["train_source"])) for seed in c["train_seeds"]]
    val = D.cached(cache, "train", c["val_scenes"], c["val_seed"], tuple(c["val_source"]))
    test = D.cached(cache, "test", c["test_scenes"], c["test_seed"])
    return train, val, test, time.time() - t0


def train_teacher(model, c, train, val, runs):
    """One cosine cycle of the teacher's training (a fresh AdamW each cycle) on the
    training scene set the cycle names, or on a stream of fresh scenes."""
    torch.manual_seed(c["seed"])
    opt = torch.optim.AdamW(model.parameters(), lr=c["lr"], weight_decay=c["wd"])
    t0 = time.time()
    model.train()
    for step, (x, masks, labels, _, targets) in enumerate(scene_source(train, c["scenes"], c["iters"], c["seed"])):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c["iters"], c["lr"], c["warmup"])
        out = model(x)
        loss, parts = task_loss(out, masks, labels, targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == c["iters"] - 1:
            el = time.time() - t0
            log(runs, f"teacher step {step}/{c['iters']} loss {loss.item():.4f} "
                      + " ".join(f"{k} {v:.3f}" for k, v in parts.items())
                      + f" {el / (step + 1):.2f}s/it eta {el / (step + 1) * (c['iters'] - step - 1) / 60:.1f}min")
        if step > 0 and step % 1000 == 0:
            log(runs, f"teacher val at {step}: {evaluate(model, val)}")
            torch.save(model.state_dict(), os.path.join(runs, "teacher-partial.pt"))
            model.train()
    return model, time.time() - t0


def student_from_teacher(teacher, cfg=None):
    """A student whose trunk and heads start as the teacher's; with
    cfg["dynamic"] (an entry of CONFIG["students"]) its encoder's convolutions
    listed there are dynamic convolutions of K kernels (train/dynconv.py).

    Its encoder, bottleneck and decoder are initialised from a fixed RNG state
    (the one right after seeding and building the teacher), so each student is
    the same whether the run started from scratch or resumed from checkpoints.
    """
    torch.manual_seed(CONFIG["teacher"][0]["seed"])
    Teacher()  # advances the RNG exactly as building the teacher does
    dyn = (cfg or {}).get("dynamic") or {}
    s = Student(CONFIG["latent_channels"], CONFIG["encoder_width"], CONFIG["decoder_width"], CONFIG["refine_width"],
                dynamic=tuple(dyn.get("layers", ())), K=dyn.get("K", 4))
    s.trunk.load_state_dict(teacher.trunk.state_dict())
    s.heads.load_state_dict(teacher.heads.state_dict())
    return s


def train_stage1(student, teacher, beta, iters, train, runs, tag, anneal_steps=0):
    """Distils the teacher's features into encoder, bottleneck and decoder, with beta
    times the rate (bits per input pixel); trunk and heads frozen. The features: the
    first CONFIG["stage1"]["distil_depth"] of stride 4, 8 and 16 and the FPN output.
    The decoder's refine block stays out (it is the identity until stage 2 trains it).
    train: the training scene sets (CONFIG["student_scenes"] picks the source).
    Dynamic convolutions in the encoder have their attention temperature annealed
    from 30 to 1 over the first anneal_steps steps, and stay at 1 after."""
    c = dict(CONFIG["stage1"], iters=iters)
    torch.manual_seed(c["seed"])
    for p in list(student.trunk.parameters()) + list(student.heads.parameters()):
        p.requires_grad_(False)
    eb = student.entropy_bottleneck
    density = [p for n, p in eb.named_parameters() if n != "quantiles"]
    coder = list(student.encoder.parameters()) + list(student.decoder.layers.parameters())
    # the factorized density gets a larger step: with a few hundred steps it must
    # move far from its wide initialisation for the rate term to mean anything
    opt = torch.optim.Adam([{"params": coder, "lr": c["lr"], "base": c["lr"]},
                            {"params": density, "lr": c["eb_lr"], "base": c["eb_lr"]}])
    aux_opt = torch.optim.Adam([eb.quantiles], lr=c["aux_lr"])
    teacher.eval()
    t0 = time.time()
    npix = D.SIZE * D.SIZE
    for step, (x, _, _, _, _) in enumerate(scene_source(train, CONFIG["student_scenes"], iters, c["seed"])):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c["iters"], g["base"], 20)
        set_temperature(student.encoder, temperature_at(step, anneal_steps))
        student.encoder.train()
        student.decoder.layers.train()
        eb.train()
        student.trunk.eval()
        with torch.no_grad():
            t1 = teacher.stage1(x)
            tp, (_, t2, t3) = teacher.trunk(t1, return_all=True)
        y = student.encoder(x)
        y_hat, lik = eb(y)
        s1 = student.decoder.layers(y_hat)
        sp, (_, s2, s3) = student.trunk(s1, return_all=True)
        pairs = [(s1, t1), (s2, t2), (s3, t3), (sp, tp)][:c["distil_depth"]]
        # scaled to the sum of two terms, so that beta weighs the rate as with two
        distill = sum(relative_mse(s, t) for s, t in pairs) * 2 / len(pairs)
        bpp = -torch.log2(lik).sum() / (x.size(0) * npix)
        loss = distill + beta * bpp
        opt.zero_grad()
        loss.backward()
        opt.step()
        aux = eb.loss()
        aux_opt.zero_grad()
        aux.backward()
        aux_opt.step()
        if step % 25 == 0 or step == c["iters"] - 1:
            el = time.time() - t0
            log(runs, f"{tag} stage1 step {step}/{c['iters']} distill {distill.item():.4f} bpp {bpp.item():.4f} "
                      f"bytes/img {bpp.item() * npix / 8:.0f} aux {aux.item():.2f} {el / (step + 1):.2f}s/it")
    set_temperature(student.encoder, 1.0)
    # fix the medians (and the tables) now, so stage 2 trains on the symbols the codec will send
    eb.update(force=True, update_quantiles=True)
    return time.time() - t0


def train_stage2(student, teacher, iters, train, runs, tag):
    """Freezes encoder and bottleneck; fine-tunes decoder, trunk and heads on the
    quantised latent with the task losses plus distillation from the teacher's
    outputs and (weighted by feature_kd) its trunk features."""
    c = dict(CONFIG["stage2"], iters=iters)
    torch.manual_seed(c["seed"])
    for p in student.parameters():
        p.requires_grad_(False)
    params = list(student.decoder.parameters()) + list(student.trunk.parameters()) + list(student.heads.parameters())
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=c["lr"], weight_decay=c["wd"])
    teacher.eval()
    t0 = time.time()
    for step, (x, masks, labels, _, targets) in enumerate(scene_source(train, CONFIG["student_scenes"], iters, c["seed"])):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, c["iters"], c["lr"], c["warmup"])
        student.train()
        student.encoder.eval()
        student.entropy_bottleneck.eval()
        with torch.no_grad():
            tout, tfeats = teacher(x, return_feats=True)
            y = student.encoder(x)
            y_hat, _ = student.entropy_bottleneck(y)
        f1 = student.decoder(y_hat)
        features, feats = student.trunk(f1, return_all=True)
        out = student.heads(features)
        lt, parts = task_loss(out, masks, labels, targets)
        lk = kd_loss(out, tout)
        lf = sum(relative_mse(a, b) for a, b in zip(feats + (features,), tfeats))
        loss = lt + lk + c["feature_kd"] * lf
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 25 == 0 or step == c["iters"] - 1:
            el = time.time() - t0
            log(runs, f"{tag} stage2 step {step}/{c['iters']} task {lt.item():.4f} kd {lk.item():.4f} "
                      f"feature kd {lf.item():.4f} "
                      + " ".join(f"{k} {v:.3f}" for k, v in parts.items()) + f" {el / (step + 1):.2f}s/it")
    return time.time() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="models/zoo", help="bundle output folder")
    ap.add_argument("--runs", default="train/runs", help="checkpoints and logs")
    ap.add_argument("--cache", default="train/cache", help="generated data set cache")
    ap.add_argument("--stop-after", choices=["data", "teacher", "students"], help="stop after this stage")
    args = ap.parse_args(argv)
    torch.set_num_threads(CONFIG["threads"])
    os.makedirs(args.runs, exist_ok=True)
    times_path = os.path.join(args.runs, "times.json")
    times = json.load(open(times_path)) if os.path.exists(times_path) else {}

    def save_times():
        with open(times_path, "w") as f:
            json.dump(times, f, indent=1)

    train, val, test, dt = load_data(args.cache)
    times.setdefault("data_s", round(dt, 1))
    save_times()
    log(args.runs, f"data ready: train {' + '.join(str(len(t['labels'])) for t in train)} val {len(val['labels'])} test {len(test['labels'])}")
    if args.stop_after == "data":
        return

    torch.manual_seed(CONFIG["teacher"][0]["seed"])
    teacher = Teacher()
    for i, phase in enumerate(CONFIG["teacher"]):
        tpath = teacher_checkpoint(args.runs, i)
        if os.path.exists(tpath):
            teacher.load_state_dict(torch.load(tpath))
            continue
        teacher, dt = train_teacher(teacher, phase, train, val, args.runs)
        torch.save(teacher.state_dict(), tpath)
        times[f"teacher_p{i}_s"] = round(dt, 1)
        save_times()
        log(args.runs, f"teacher cycle {i} trained in {dt / 60:.1f} min; val {evaluate(teacher, val)}")
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if args.stop_after == "teacher":
        return

    for cfg in CONFIG["students"]:
        tag = beta_tag(cfg["beta"])
        p1 = student_checkpoint(args.runs, cfg, 1)
        p2 = student_checkpoint(args.runs, cfg, 2)
        if os.path.exists(p2):
            continue
        student = student_from_teacher(teacher, cfg)
        if os.path.exists(p1):
            student.load_state_dict(torch.load(p1))
        else:
            dt = train_stage1(student, teacher, cfg["beta"], cfg["stage1_iters"], train, args.runs, tag,
                              anneal_steps=(cfg.get("dynamic") or {}).get("anneal_steps", 0))
            torch.save(student.state_dict(), p1)
            times[f"{tag}_stage1_s"] = round(dt, 1)
            save_times()
        dt = train_stage2(student, teacher, cfg["stage2_iters"], train, args.runs, tag)
        torch.save(student.state_dict(), p2)
        times[f"{tag}_stage2_s"] = round(dt, 1)
        save_times()
        log(args.runs, f"{tag} val {evaluate(student, val)}")
    if args.stop_after == "students":
        return

    export.export_all(args.out, args.runs, teacher, test, times, CONFIG, MEAN, STD)


if __name__ == "__main__":
    main()
