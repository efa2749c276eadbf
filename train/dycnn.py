"""Issue 23's experiment: one Entropic Student whose encoder convolutions are
dynamic convolutions (train/dynconv.py), trained with the pipeline's two
stages (train/pipeline.py) and exported as an experimental bundle.

    python3 -m train.dycnn --out /tmp/dycnn --stage1 600 --stage2 300

It starts from the shipped bundles, not from training checkpoints (those are
not in git): the teacher is loaded from models/zoo/fmnist-teacher's graphs
(train/fromonnx.py); the student is built as the pipeline builds it (trunk and
heads from the teacher), and its encoder and decoder (without the refine
block, which starts as the identity as in the pipeline) start as the shipped
student's at the same beta, each dynamic layer's K kernels as the shipped
kernel plus 10% relative noise. Stage 1 and stage 2 then run as in the
pipeline, with the attention temperature annealed 30 -> 1 over the first
quarter of stage 1.
"""
from __future__ import annotations

import argparse
import json
import os
import time

import torch
import torch.nn as nn

from . import export, fromonnx, testset as T
from .config import CONFIG, MEAN, STD
from .dynconv import DynamicConv2d, set_form
from .models import Student, Teacher
from .pipeline import student_from_teacher, train_stage1, train_stage2


def teacher_from_bundle(folder):
    t = Teacher()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 96, 96, generator=g)
    fromonnx.load(nn.Sequential(t.stage1, t.trunk), f"{folder}/trunk.onnx", x, "image")
    fromonnx.load_heads(t.heads, folder, torch.randn(2, 48, 24, 24, generator=g).abs())
    t.eval()
    for p in t.parameters():
        p.requires_grad_(False)
    return t


def warm_start(student, folder, K, noise, seed=0):
    """Encoder and decoder layers from the shipped student's graphs in folder;
    every DynamicConv2d of student's encoder gets K noisy copies of the kernel."""
    plain = Student(CONFIG["latent_channels"], CONFIG["encoder_width"], CONFIG["decoder_width"], CONFIG["refine_width"])
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 96, 96, generator=g)
    fromonnx.load(plain.encoder, f"{folder}/encoder.onnx", x, "image")
    y = plain.encoder(x).detach()
    fromonnx.load(nn.Sequential(plain.decoder, plain.trunk), f"{folder}/trunk.onnx", y, "latent")
    student.decoder.layers.load_state_dict(plain.decoder.layers.state_dict())
    enc = student.encoder.layers
    for i, m in enumerate(plain.encoder.layers):
        if isinstance(enc[i], DynamicConv2d):
            enc[i] = DynamicConv2d.from_conv(m, K=K, noise=noise, generator=g)
        else:
            enc[i].load_state_dict(m.state_dict())
    return student


def encoder_cost(encoder):
    """(parameters, FLOPs per 96 x 96 image) of an encoder: 2 x multiply-adds of its
    convolutions, GDN 1x1 convolutions and attention layers, and for a dynamic
    layer the kernel aggregation ("aggregate": K x its weights) or its K
    convolutions ("mixed", as the layer's current form); elementwise work not counted."""
    flops = []

    def conv_hook(m, i, o):
        if isinstance(m, DynamicConv2d):
            conv = 2 * o.shape[1] * o.shape[2] * o.shape[3] * m.in_channels * m.kernel_size ** 2
            flops.append(conv * m.K if m.form == "mixed" else conv + 2 * m.weight.numel())
        elif isinstance(m, nn.Conv2d):
            flops.append(2 * o.numel() * m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        elif isinstance(m, nn.Linear):
            flops.append(2 * m.in_features * m.out_features)
        elif hasattr(m, "gamma") and hasattr(m, "beta"):  # GDN: a 1x1 convolution of C x C
            flops.append(2 * o.numel() * m.beta.numel())

    hooks = [m.register_forward_hook(conv_hook) for m in encoder.modules()]
    try:
        with torch.no_grad():
            encoder.eval()(torch.zeros(1, 3, 96, 96))
    finally:
        for h in hooks:
            h.remove()
    return sum(p.numel() for p in encoder.parameters()), sum(flops)


def export_forms(encoder, folder):
    """Writes the encoder in both forms (encoder-aggregate.onnx, encoder-mixed.onnx)
    into folder, for `splitstream bench engine --model`; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    x = torch.zeros(1, 3, 96, 96)
    paths = []
    for form in ("aggregate", "mixed"):
        set_form(encoder, form)
        path = os.path.join(folder, f"encoder-{form}.onnx")
        export.export_onnx(encoder, x, path, "image", ["latent"], f"encoder ({form})")
        paths.append(path)
    return paths


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the experimental bundle (not models/zoo)")
    ap.add_argument("--zoo", default="models/zoo")
    ap.add_argument("--runs", default="train/runs/dycnn")
    ap.add_argument("--beta", type=float, default=0.11)
    ap.add_argument("--layers", default="0,1,2",
                    help="indices of the encoder convolutions made dynamic (\"\": none, the plain control)")
    ap.add_argument("-K", type=int, default=4)
    ap.add_argument("--noise", type=float, default=0.1)
    ap.add_argument("--stage1", type=int, default=600)
    ap.add_argument("--stage2", type=int, default=300)
    ap.add_argument("--form", default="mixed", choices=["mixed", "aggregate"], help="the exported graph's form")
    ap.add_argument("--forms", help="also write the encoder in both forms into this folder (for bench engine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(CONFIG["threads"])
    os.makedirs(args.runs, exist_ok=True)
    layers = [int(i) for i in args.layers.split(",") if i.strip()]
    tag = f"{'dy' if layers else 'plain'}-b{args.beta:g}"  # --layers "": the plain control, same recipe
    cfg = {"beta": args.beta, "stage1_iters": args.stage1, "stage2_iters": args.stage2,
           "dynamic": {"layers": layers, "K": args.K, "anneal_steps": args.stage1 // 4}}
    teacher = teacher_from_bundle(os.path.join(args.zoo, "fmnist-teacher"))
    student = student_from_teacher(teacher, cfg)
    warm_start(student, os.path.join(args.zoo, f"fmnist-es-b{args.beta:g}"), args.K, args.noise)
    times = {}
    p1 = os.path.join(args.runs, f"{tag}-stage1-{args.stage1}.pt")
    if os.path.exists(p1):
        student.load_state_dict(torch.load(p1))
    else:
        times["stage1_s"] = train_stage1(student, teacher, args.beta, args.stage1, None, args.runs, tag,
                                         anneal_steps=cfg["dynamic"]["anneal_steps"])
        torch.save(student.state_dict(), p1)
    p2 = os.path.join(args.runs, f"{tag}-stage2-{args.stage1}-{args.stage2}.pt")
    if os.path.exists(p2):
        student.load_state_dict(torch.load(p2))
    else:
        times["stage2_s"] = train_stage2(student, teacher, args.stage2, None, args.runs, tag)
        torch.save(student.state_dict(), p2)
    with open(os.path.join(args.runs, f"{tag}-times.json"), "a") as f:
        f.write(json.dumps(times) + "\n")
    student.eval()
    student.entropy_bottleneck.update(force=True)
    if args.forms:
        print("encoder forms:", export_forms(student.encoder, args.forms), flush=True)
    for form in ("aggregate", "mixed"):
        set_form(student.encoder, form)
        print(f"encoder ({form}): parameters, FLOPs per image:", encoder_cost(student.encoder), flush=True)
    set_form(student.encoder, args.form)
    test = T.load_testset(args.zoo)
    heads = {"classify": student.heads.classify, "detect": student.heads.detect, "segment": student.heads.segment}
    m = export.export_split_bundle(
        os.path.dirname(os.path.abspath(args.out)) or ".", os.path.basename(args.out), student.encoder,
        student.entropy_bottleneck, nn.Sequential(student.decoder, student.trunk), heads, test, MEAN, STD,
        extra={"training": dict(cfg, warm_start=f"{args.zoo}/fmnist-es-b{args.beta:g} encoder and decoder layers, "
                                                 f"teacher from {args.zoo}/fmnist-teacher", noise=args.noise,
                                form=args.form, stage1=CONFIG["stage1"], stage2=CONFIG["stage2"], **times)})
    print(args.out, m["metrics"], flush=True)


if __name__ == "__main__":
    main()
