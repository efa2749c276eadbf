"""The configuration of the shipped training run and the names derived from
it (checkpoint paths, bundle tags). Both train/pipeline.py, which trains, and
train/export.py, which exports the zoo, import it; neither imports the other's
internals.

Checkpoint names carry a hash of the configuration the stage depends on, so
after a change of CONFIG the stages it touches run again.
"""
from __future__ import annotations

import hashlib
import json
import os

# Input normalisation of the shipped models: x = (pixel / 255 - MEAN) / STD.
MEAN = [0.5, 0.5, 0.5]
STD = [0.25, 0.25, 0.25]
CONFIG = {
    "threads": 2,
    "batch": 64,
    # training scene sets, all from the same source garments: set 0 (seed 1) for the
    # teacher's first cycle, set 1 (seed 4) for its second; fresh scenes for the second
    # cycle because after the first the teacher's classification loss on its training
    # scenes was ~0.2 against top-1 0.836 on validation. Later cycles and the students
    # train on a stream of fresh scenes ("stream", see the third cycle)
    "train_scenes": 48000, "train_seeds": [1, 4], "train_source": [0, 55000],
    "val_scenes": 1000, "val_seed": 2, "val_source": [55000, 60000],
    "test_scenes": 500, "test_seed": 3,
    # first a long cosine cycle (3000 steps left the teacher under-trained: train and
    # validation scores equal, top-1 0.74); at its end validation top-1 was still
    # rising (0.831 at 7000 steps, 0.836 at 8000), hence a second, shorter cycle
    "teacher": [{"iters": 8000, "lr": 2e-3, "wd": 1e-4, "warmup": 200, "seed": 10, "scenes": 0},
                {"iters": 4000, "lr": 1e-3, "wd": 1e-4, "warmup": 100, "seed": 11, "scenes": 1},
                # after the second cycle top-1 was 0.91 on its own training scenes but 0.828
                # on new scenes of the same garments (0.826 of test garments): the teacher had
                # learnt scenes by heart, so its third cycle never sees a scene twice
                {"iters": 3000, "lr": 1e-3, "wd": 1e-4, "warmup": 100, "seed": 12, "scenes": "stream"},
                # each stream cycle still gained (validation top-1 0.857 after the third,
                # 0.864 after the fourth); the fifth is longer, for a longer low-rate tail
                {"iters": 3000, "lr": 1e-3, "wd": 1e-4, "warmup": 100, "seed": 13, "scenes": "stream"},
                {"iters": 4500, "lr": 1e-3, "wd": 1e-4, "warmup": 100, "seed": 14, "scenes": "stream"}],
    "student_scenes": "stream",
    "latent_channels": 24,
    # the decoder runs in the cloud, so it can be wide for free; the encoder's width
    # is edge compute. 48/128 against 32/64: beta 0.1 student +1.0 top-1 and +0.018
    # mAP on validation; its encoder 2.1 ms instead of 1.4 ms on one core
    "encoder_width": 48, "decoder_width": 128,
    # hidden width of the decoder's residual 3x3 block, which joins in stage 2 (models.Refine)
    "refine_width": 128,
    # one student per beta, highest rate first: it is the one held to the teacher's
    # accuracy, so it gets the longest fine-tuning; the others trace the rate curve
    # beta 0.11, not 0.1: against the stream-trained teacher, beta 0.1 coded the test
    # set at 667.5 B per image, 0.1 B over 1/5 of its JPEG q90 size (667.3 B)
    # an entry may add "dynamic": {"layers": [0, 1, 2], "K": 4, "anneal_steps": N}: the
    # encoder's convolutions of those indices become dynamic convolutions of K kernels
    # whose attention temperature is annealed 30 -> 1 over the first N stage-1 steps
    # (train/dynconv.py; issue 23). None of the shipped students has it.
    "students": [{"beta": 0.11, "stage1_iters": 3000, "stage2_iters": 2400},
                 {"beta": 0.3, "stage1_iters": 600, "stage2_iters": 400},
                 {"beta": 1.0, "stage1_iters": 600, "stage2_iters": 400}],
    # distil_depth: how many of the teacher's stride-4, -8, -16 and FPN features stage 1
    # distils (1..4). es-b0.11 after stage 1, on validation (top1 / map50 / miou, coded
    # test B/img): 1500 steps of depth 2 0.793 / 0.730 / 0.560, 617.9 B; 3000 steps of
    # depth 4 0.839 / 0.777 / 0.599, 630.0 B (both changed at once, one run each)
    "stage1": {"lr": 2e-3, "eb_lr": 1e-2, "aux_lr": 1e-2, "seed": 20, "distil_depth": 4},
    # feature_kd: weight of the distillation of the teacher's trunk features in stage 2
    # (with the refine block, 800 steps of es-b0.11: validation 0.833 / 0.782 / 0.600
    # against 0.830 / 0.773 / 0.594 without either, 0.826 / 0.777 / 0.596 with the block only)
    "stage2": {"lr": 5e-4, "wd": 1e-4, "warmup": 30, "seed": 30, "feature_kd": 1.0},
}


def config_key(*parts):
    """Eight hex digits identifying the configuration parts a checkpoint was made with."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:8]


def teacher_parts(i):
    """The parts of CONFIG the teacher after its cycle i depends on."""
    c = CONFIG
    return [c["batch"], c["train_scenes"], c["train_source"], c["train_seeds"], c["teacher"][:i + 1]]


def teacher_checkpoint(runs, i):
    """The checkpoint of the teacher after its cycle i."""
    return os.path.join(runs, f"teacher-p{i}-{config_key(*teacher_parts(i))}.pt")


def student_checkpoint(runs, cfg, stage):
    """The checkpoint of the student of cfg (an entry of CONFIG["students"]) after stage 1 or 2."""
    c = CONFIG
    parts = teacher_parts(len(c["teacher"]) - 1) + [
        c["latent_channels"], c["encoder_width"], c["decoder_width"], c["student_scenes"],
        cfg["beta"], c["stage1"], cfg["stage1_iters"]]
    if cfg.get("dynamic"):  # only then, so the plain students' names stay as they were
        parts += [cfg["dynamic"]]
    if stage == 2:
        parts += [c["refine_width"], c["stage2"], cfg["stage2_iters"]]
    return os.path.join(runs, f"student-{beta_tag(cfg['beta'])}-stage{stage}-{config_key(*parts)}.pt")


def beta_tag(beta):
    return f"b{beta:g}"
