"""Exports your own model as a splitstream bundle (docs/IMPORT.md).

    python3 -m train.export_model mypackage.models:build --checkpoint model.pt \\
        --labels labels.txt --input-size 224 224 --mean 0.485 0.456 0.406 --std 0.229 0.224 0.225 \\
        --testset path/to/testset --out bundles/my-model

FACTORY (module:function, or path/to/file.py:function) is called without
arguments and returns a dict:

    "encoder"             image -> latent y (split bundles; leave out for a full model)
    "entropy_bottleneck"  CompressAI's EntropyBottleneck (or one with its attributes)
    "trunk"               y_hat -> features (full model: image -> features)
    "heads"               {"classify" | "detect" | "segment": module on the features}
    "model"               optional: the module --checkpoint is loaded into
                          (default: a ModuleDict of the four above)

The bundle is written beside --out and renamed to it only when every check
passed, the parity gate included (it runs bin/splitstream: `make build`).
Exit status 0 on success; otherwise the message names what failed.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys

import torch
import torch.nn as nn

from . import export as E
from . import gate
from . import testset as T
from .layers import UnsupportedLayer

_TABLES = ("_quantized_cdf", "_cdf_length", "_offset")


def load_factory(spec):
    """The function named by module:function or path/to/file.py:function."""
    mod_name, sep, fn = spec.rpartition(":")
    if not sep or not mod_name or not fn:
        raise ValueError(f"factory {spec!r}: want module:function or file.py:function")
    if mod_name.endswith(".py"):
        s = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(mod_name))[0], mod_name)
        mod = importlib.util.module_from_spec(s)
        sys.path.insert(0, os.path.dirname(os.path.abspath(mod_name)))
        s.loader.exec_module(mod)
    else:
        mod = importlib.import_module(mod_name)
    return getattr(mod, fn)


def read_lines(path):
    """Non-empty lines of a text file (one label per line)."""
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def load_checkpoint(model, path, key=None):
    """Loads a state_dict (optionally under key, or under "state_dict") into
    model, resizing the entropy tables' buffers to the saved ones first as
    CompressAI does; every key must match."""
    sd = torch.load(path, map_location="cpu")
    if key:
        sd = sd[key]
    elif isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    for name, buf in model.named_buffers():
        if name.rsplit(".", 1)[-1] in _TABLES and name in sd:
            buf.resize_(sd[name].shape)
    model.load_state_dict(sd, strict=True)


def build(args):
    parts = load_factory(args.factory)()
    if not isinstance(parts, dict) or "trunk" not in parts or not parts.get("heads"):
        raise ValueError("the factory must return a dict with 'trunk' and 'heads' (and 'encoder', "
                         "'entropy_bottleneck' for a split model)")
    split = parts.get("encoder") is not None
    if split != (parts.get("entropy_bottleneck") is not None):
        raise ValueError("a split model needs both 'encoder' and 'entropy_bottleneck'")
    heads = dict(parts["heads"])
    if args.heads:
        want = args.heads.split(",")
        missing = [h for h in want if h not in heads]
        if missing:
            raise ValueError(f"--heads {args.heads}: the model has no head {', '.join(missing)} (it has {', '.join(heads)})")
        heads = {h: heads[h] for h in want}
    if args.checkpoint:
        model = parts.get("model")
        if model is None:
            model = nn.ModuleDict({k: parts[k] for k in ("encoder", "entropy_bottleneck", "trunk") if parts.get(k) is not None})
            model["heads"] = nn.ModuleDict(parts["heads"])
        load_checkpoint(model, args.checkpoint, args.checkpoint_key)
    eb = parts.get("entropy_bottleneck")
    if split:
        if args.update:
            eb.update(force=True)
        elif getattr(eb, "_quantized_cdf", torch.empty(0)).numel() == 0:
            raise ValueError("the entropy bottleneck has no tables: call update() before saving the checkpoint, "
                             "or pass --update")
    for m in [parts.get("encoder"), parts["trunk"], *heads.values()]:
        if m is not None:
            m.eval()
    return parts, heads


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python3 -m train.export_model", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("factory", help="module:function (or file.py:function) returning the model's parts")
    ap.add_argument("--out", required=True, help="bundle folder to write (its name is the bundle's name)")
    ap.add_argument("--checkpoint", help="state_dict to load into the model (torch.save file)")
    ap.add_argument("--checkpoint-key", help="key of the state_dict inside the checkpoint, if nested")
    ap.add_argument("--labels", help="class names, one per line (default: the test set's)")
    ap.add_argument("--mask-labels", help="segmentation classes, one per line (default: the test set's, else background + labels)")
    ap.add_argument("--input-size", type=int, nargs=2, metavar=("H", "W"), help="input height and width (default: the test set's)")
    ap.add_argument("--mean", type=float, nargs=3, required=True, help="per-channel mean of pixel/255 (RGB)")
    ap.add_argument("--std", type=float, nargs=3, required=True, help="per-channel std of pixel/255 (RGB)")
    ap.add_argument("--heads", help="comma-separated heads to export (default: all the factory returns)")
    ap.add_argument("--testset", help="test set folder (docs/BUNDLE.md format) to measure metrics and take reference images from")
    ap.add_argument("--references", type=int, default=2, help="test images stored as reference vectors (default 2)")
    ap.add_argument("--update", action="store_true", help="rebuild the entropy tables (update(force=True)) before export")
    ap.add_argument("--engines", default=",".join(gate.ENGINES), help="engines of the parity gate (default native,ort)")
    ap.add_argument("--tolerance", type=float, default=gate.TOLERANCE,
                    help=f"parity tolerance, times max(1, max |output|) (default {gate.TOLERANCE:g})")
    ap.add_argument("--threads", type=int, default=2, help="torch threads")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        parts, heads = build(args)
        test = T.load(args.testset) if args.testset else None
        m = E.export_bundle(args.out, parts.get("encoder"), parts.get("entropy_bottleneck"), parts["trunk"], heads,
                            test, args.mean, args.std,
                            labels=read_lines(args.labels) if args.labels else None,
                            mask_labels=read_lines(args.mask_labels) if args.mask_labels else None,
                            input_size=args.input_size, n_ref=args.references,
                            engines=tuple(args.engines.split(",")), tolerance=args.tolerance)
    except (UnsupportedLayer, gate.ParityError, ValueError, KeyError, OSError, RuntimeError) as e:
        print(f"export_model: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.out}: {m['kind']} bundle, heads {', '.join(h['name'] for h in m['heads'])}, "
          f"metrics {m['metrics']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
