#!/usr/bin/env python3
"""Writes the dynamic-convolution encoder graphs the engine tests run
(issue 23): a small encoder of train.models.Encoder's layout whose three
convolutions are train.dynconv.DynamicConv2d (K = 4, a sharp attention),
folded and exported as the bundle exporter does, in both forms:

  dycnn_aggregate.onnx  the per-sample kernel computed in the graph (MatMul,
                        Reshape) and used as a Conv weight; batch 1 only
  dycnn_mixed.onnx      the K kernels as one Conv, weighted and summed

Reproducible (fixed seed, one thread). Run from the repository root:

    /usr/bin/python3 models/testdata/gen/dycnn.py [OUTDIR]
"""
import os
import sys

import torch

sys.path.insert(0, os.getcwd())
from train.dynconv import dynamic_layers, set_form  # noqa: E402
from train.layers import fold_layers  # noqa: E402
from train.models import Encoder  # noqa: E402


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "models/testdata"
    torch.set_num_threads(1)
    torch.manual_seed(23)
    enc = Encoder(24, width=16, dynamic=(0, 1, 2), K=4).eval()
    with torch.no_grad():
        for m in dynamic_layers(enc):
            m.fc2.weight.mul_(20)
    x = torch.zeros(1, 3, 64, 64)
    for form in ("aggregate", "mixed"):
        set_form(enc, form)
        torch.onnx.export(fold_layers(enc), x, os.path.join(out, f"dycnn_{form}.onnx"), opset_version=13,
                          input_names=["image"], output_names=["latent"],
                          dynamic_axes={"image": {0: "batch"}, "latent": {0: "batch"}})


if __name__ == "__main__":
    main()
