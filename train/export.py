"""Exports model bundles (docs/BUNDLE.md): ONNX graphs, entropy tables,
manifest with metrics measured at export, reference vectors, and the shared
test set.

The split exporter takes any CompressAI-style model: an encoder module
(image -> y), an entropy bottleneck object holding CompressAI's
_quantized_cdf, _cdf_length, _offset and quantiles (as compressai's and
sc2bench's EntropyBottleneck do after update()), a cloud trunk module
(y_hat -> features) and head modules (features -> outputs). GDN layers
(CompressAI's or this package's) are folded into plain ops first.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from . import data as D
from .config import beta_tag, student_checkpoint
from .entropy import compress_symbols
from .metrics import DETECT_PARAMS, MetricAccumulator
from .models import Student

SCHEMA_VERSION = 1
OPSET = 13
HEAD_OUTPUTS = {"classify": ["logits"], "detect": ["heatmap", "size", "offset"], "segment": ["mask_logits"]}


class PlainGDN(nn.Module):
    """GDN with its reparametrised beta and gamma folded into constants:
    x / sqrt(conv1x1(x * x, gamma) + beta), or x * sqrt(...) when inverse."""

    def __init__(self, beta, gamma, inverse):
        super().__init__()
        self.register_buffer("beta", beta.detach().clone())
        self.register_buffer("gamma", gamma.detach().clone())
        self.inverse = bool(inverse)

    def forward(self, x):
        norm = torch.sqrt(F.conv2d(x * x, self.gamma, self.beta))
        return x * norm if self.inverse else x / norm


def fold_gdn(module: nn.Module) -> nn.Module:
    """A copy of module with every GDN (CompressAI-style: beta, gamma,
    beta_reparam, gamma_reparam, inverse) replaced by a PlainGDN."""
    module = copy.deepcopy(module)

    def visit(m):
        for name, child in list(m.named_children()):
            if all(hasattr(child, a) for a in ("beta", "gamma", "beta_reparam", "gamma_reparam", "inverse")):
                with torch.no_grad():
                    C = child.beta.numel()
                    beta = child.beta_reparam(child.beta)
                    gamma = child.gamma_reparam(child.gamma).reshape(C, C, 1, 1)
                setattr(m, name, PlainGDN(beta, gamma, child.inverse))
            else:
                visit(child)

    visit(module)
    return module.eval()


class _Select(nn.Module):
    """Wraps a head so that its outputs are a tuple in a fixed order."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        out = self.fn(x)
        return tuple(out) if isinstance(out, (tuple, list)) else out


def export_onnx(module, example, path, input_name, output_names):
    module = fold_gdn(module)
    axes = {input_name: {0: "batch"}}
    axes.update({n: {0: "batch"} for n in output_names})
    with torch.no_grad():
        torch.onnx.export(module, example, path, opset_version=OPSET, input_names=[input_name],
                          output_names=output_names, dynamic_axes=axes, do_constant_folding=True)
    import onnx

    model = onnx.load(path)
    onnx.checker.check_model(model)
    return sorted({n.op_type for n in model.graph.node})


def bundle_hash(folder: str) -> str:
    """sha256 over the listing "<sha256 hex>  <relative path>\\n" of every file in
    the bundle, sorted by path; manifest.json enters with its hash value emptied."""
    entries = []
    for root, _, files in os.walk(folder):
        for f in files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, folder).replace(os.sep, "/")
            with open(p, "rb") as fh:
                b = fh.read()
            if rel == "manifest.json":
                b = _empty_hash(b)
            entries.append((rel, hashlib.sha256(b).hexdigest()))
    listing = "".join(f"{h}  {rel}\n" for rel, h in sorted(entries, key=lambda e: e[0].encode()))
    return "sha256:" + hashlib.sha256(listing.encode()).hexdigest()


def _empty_hash(manifest_bytes: bytes) -> bytes:
    key = b'"hash": "'
    i = manifest_bytes.find(key)
    if i < 0:
        return manifest_bytes
    j = manifest_bytes.index(b'"', i + len(key))
    return manifest_bytes[: i + len(key)] + manifest_bytes[j:]


def write_manifest(folder, manifest):
    manifest = dict(manifest)
    manifest["hash"] = ""
    path = os.path.join(folder, "manifest.json")
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    manifest["hash"] = bundle_hash(folder)
    with open(path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    return manifest


def verify_hash(folder) -> bool:
    with open(os.path.join(folder, "manifest.json")) as f:
        m = json.load(f)
    return m["hash"] == bundle_hash(folder)


def jpeg_bytes(images_u8, quality=90):
    sizes = []
    for im in images_u8:
        b = io.BytesIO()
        Image.fromarray(im).save(b, format="JPEG", quality=quality)
        sizes.append(len(b.getvalue()))
    return float(np.mean(sizes))


def normalise(images_u8, mean, std):
    x = torch.from_numpy(np.ascontiguousarray(images_u8)).permute(0, 3, 1, 2).float() / 255.0
    return (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)


def entropy_tables(eb):
    """The tables exactly as CompressAI's EntropyBottleneck holds them after update()."""
    if eb._quantized_cdf.numel() == 0:
        raise ValueError("entropy bottleneck has no CDF tables: call update() first")
    lengths = [int(v) for v in eb._cdf_length.reshape(-1).tolist()]
    cdfs = [[int(v) for v in row[:n]] for row, n in zip(eb._quantized_cdf.tolist(), lengths)]
    return {"precision": 16, "cdfs": cdfs, "cdf_lengths": lengths,
            "offsets": [int(v) for v in eb._offset.reshape(-1).tolist()],
            "medians": [float(v) for v in eb.quantiles[:, 0, 1].detach().float().tolist()]}


def heads_spec(head_files, input_name):
    labels = list(D.LABELS)
    spec = []
    for name in head_files:
        h = {"name": name, "file": f"head_{name}.onnx", "input": input_name, "outputs": HEAD_OUTPUTS[name]}
        if name == "classify":
            h.update(task="classification", labels=labels, postprocess={"top_k": 5})
        elif name == "detect":
            h.update(task="detection", labels=labels, postprocess=dict(DETECT_PARAMS))
        else:
            h.update(task="segmentation", labels=["background"] + labels,
                     postprocess={"decoder": "argmax", "axis": 1})
        spec.append(h)
    return spec


def _save_raw(folder, fname, arr, dtype):
    a = np.ascontiguousarray(np.asarray(arr).astype("<f4" if dtype == "float32" else "<i4"))
    with open(os.path.join(folder, fname), "wb") as f:
        f.write(a.tobytes())
    return {"dtype": dtype, "shape": list(a.shape), "file": fname}


def export_split_bundle(out_dir, name, encoder, eb, trunk, heads, test, mean, std, extra=None, n_ref=2,
                        batch=50):
    """Writes a split bundle (kind "split") under out_dir/name and returns its manifest.

    encoder: image (normalised, N x 3 x H x W) -> y; eb: CompressAI-style
    EntropyBottleneck after update(); trunk: y_hat -> features; heads:
    dict name -> module (features -> outputs in HEAD_OUTPUTS order).
    """
    folder = os.path.join(out_dir, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "reference"))
    encoder, trunk = encoder.eval(), trunk.eval()
    heads = {k: v.eval() for k, v in heads.items()}
    tables = entropy_tables(eb)
    medians = torch.tensor(tables["medians"]).view(1, -1, 1, 1)
    H, W = test["images"].shape[1:3]
    x0 = normalise(test["images"][:1], mean, std)
    with torch.no_grad():
        y0 = encoder(x0)
        f0 = trunk(y0)
    C, h, w = y0.shape[1:]
    ops = {}
    ops["encoder"] = export_onnx(encoder, x0, os.path.join(folder, "encoder.onnx"), "image", ["latent"])
    ops["trunk"] = export_onnx(trunk, y0, os.path.join(folder, "trunk.onnx"), "latent", ["features"])
    for hn, hm in heads.items():
        ops[hn] = export_onnx(_Select(hm), f0, os.path.join(folder, f"head_{hn}.onnx"), "features",
                              HEAD_OUTPUTS[hn])
    with open(os.path.join(folder, "entropy.json"), "w") as f:
        json.dump({k: tables[k] for k in ("cdfs", "cdf_lengths", "offsets", "medians")}, f)
        f.write("\n")

    acc = MetricAccumulator(D.NUM_CLASSES)
    nbytes, refs = [], []
    n = len(test["labels"])
    for i in range(0, n, batch):
        x = normalise(test["images"][i:i + batch], mean, std)
        with torch.no_grad():
            y = encoder(x)
            sym = torch.round(y - medians).int()
            y_hat = sym.float() + medians
            feats = trunk(y_hat)
            outs = {}
            for hn, hm in heads.items():
                o = hm(feats)
                o = o if isinstance(o, (tuple, list)) else (o,)
                outs.update(zip(HEAD_OUTPUTS[hn], o))
        strings = [compress_symbols(s.numpy(), tables["cdfs"], tables["cdf_lengths"], tables["offsets"])
                   for s in sym]
        nbytes += [len(s) for s in strings]
        acc.add({k: v.numpy() for k, v in outs.items()}, test["labels"][i:i + batch], test["boxes"][i:i + batch],
                test["masks"][i:i + batch])
        for j in range(min(n_ref - len(refs), len(sym))):
            k = i + j
            t = {"input": (x[j:j + 1], "float32"), "latent": (y[j:j + 1], "float32"),
                 "symbols": (sym[j:j + 1], "int32"), "latent_hat": (y_hat[j:j + 1], "float32"),
                 "features": (feats[j:j + 1], "float32")}
            t.update({on: (ov[j:j + 1], "float32") for on, ov in outs.items()})
            entry = {"index": k, "image": f"scene_{k:04d}.png", "tensors": []}
            for tn, (arr, dt) in t.items():
                rec = _save_raw(os.path.join(folder, "reference"), f"{k}_{tn}.bin", arr.numpy(), dt)
                entry["tensors"].append(dict(name=tn, **rec))
            fname = f"{k}_rans.bin"
            with open(os.path.join(folder, "reference", fname), "wb") as f:
                f.write(strings[j])
            entry["tensors"].append({"name": "rans", "dtype": "uint8", "shape": [len(strings[j])], "file": fname})
            refs.append(entry)
    with open(os.path.join(folder, "reference", "index.json"), "w") as f:
        json.dump({"images": refs}, f, indent=1)
        f.write("\n")
    parity = onnx_parity(folder, refs[0], "latent_hat")
    metrics = acc.result()
    metrics.update(bytes_per_image=float(np.mean(nbytes)), jpeg_q90_bytes_per_image=jpeg_bytes(test["images"]),
                   engine="pytorch")
    metrics["jpeg_ratio"] = metrics["bytes_per_image"] / metrics["jpeg_q90_bytes_per_image"]
    manifest = {
        "schema_version": SCHEMA_VERSION, "name": name, "kind": "split",
        "input": {"height": int(H), "width": int(W), "channels": 3, "layout": "NCHW", "scale": 255.0,
                  "mean": list(mean), "std": list(std)},
        "latent": {"channels": int(C), "height": int(h), "width": int(w)},
        "codec": "factorized-rans-v1",
        "entropy": {"file": "entropy.json", "precision": 16},
        "encoder": {"file": "encoder.onnx", "input": "image", "output": "latent"},
        "cloud": {"layout": "trunk", "trunk": {"file": "trunk.onnx", "input": "latent", "output": "features"}},
        "heads": heads_spec(list(heads), "features"),
        "metrics": metrics,
        "onnx": {"opset": OPSET, "ops": sorted({o for v in ops.values() for o in v}), "parity": parity},
        "reference": "reference/index.json",
        "testset": "../testset",
    }
    if extra:
        manifest.update(extra)
    return write_manifest(folder, manifest)


def export_full_bundle(out_dir, name, stem, trunk, heads, test, mean, std, extra=None, n_ref=2, batch=50):
    """Writes a full-model bundle (kind "full": image in, task outputs out):
    trunk.onnx (image -> features) and one graph per head."""
    folder = os.path.join(out_dir, name)
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(os.path.join(folder, "reference"))
    front = nn.Sequential(stem, trunk).eval()
    heads = {k: v.eval() for k, v in heads.items()}
    H, W = test["images"].shape[1:3]
    x0 = normalise(test["images"][:1], mean, std)
    with torch.no_grad():
        f0 = front(x0)
    ops = {"trunk": export_onnx(front, x0, os.path.join(folder, "trunk.onnx"), "image", ["features"])}
    for hn, hm in heads.items():
        ops[hn] = export_onnx(_Select(hm), f0, os.path.join(folder, f"head_{hn}.onnx"), "features",
                              HEAD_OUTPUTS[hn])
    acc = MetricAccumulator(D.NUM_CLASSES)
    refs = []
    n = len(test["labels"])
    for i in range(0, n, batch):
        x = normalise(test["images"][i:i + batch], mean, std)
        with torch.no_grad():
            feats = front(x)
            outs = {}
            for hn, hm in heads.items():
                o = hm(feats)
                o = o if isinstance(o, (tuple, list)) else (o,)
                outs.update(zip(HEAD_OUTPUTS[hn], o))
        acc.add({k: v.numpy() for k, v in outs.items()}, test["labels"][i:i + batch], test["boxes"][i:i + batch],
                test["masks"][i:i + batch])
        for j in range(min(n_ref - len(refs), len(x))):
            k = i + j
            t = {"input": x[j:j + 1], "features": feats[j:j + 1]}
            t.update({on: ov[j:j + 1] for on, ov in outs.items()})
            entry = {"index": k, "image": f"scene_{k:04d}.png", "tensors": []}
            for tn, arr in t.items():
                rec = _save_raw(os.path.join(folder, "reference"), f"{k}_{tn}.bin", arr.numpy(), "float32")
                entry["tensors"].append(dict(name=tn, **rec))
            refs.append(entry)
    with open(os.path.join(folder, "reference", "index.json"), "w") as f:
        json.dump({"images": refs}, f, indent=1)
        f.write("\n")
    parity = onnx_parity(folder, refs[0], "input")
    metrics = acc.result()
    metrics.update(jpeg_q90_bytes_per_image=jpeg_bytes(test["images"]), engine="pytorch")
    manifest = {
        "schema_version": SCHEMA_VERSION, "name": name, "kind": "full",
        "input": {"height": int(H), "width": int(W), "channels": 3, "layout": "NCHW", "scale": 255.0,
                  "mean": list(mean), "std": list(std)},
        "cloud": {"layout": "trunk", "trunk": {"file": "trunk.onnx", "input": "image", "output": "features"}},
        "heads": heads_spec(list(heads), "features"),
        "metrics": metrics,
        "onnx": {"opset": OPSET, "ops": sorted({o for v in ops.values() for o in v}), "parity": parity},
        "reference": "reference/index.json",
        "testset": "../testset",
    }
    if extra:
        manifest.update(extra)
    return write_manifest(folder, manifest)


def load_reference(folder, entry):
    """The reference tensors of one index.json entry, by name, as numpy arrays."""
    out = {}
    for t in entry["tensors"]:
        dt = {"float32": "<f4", "int32": "<i4", "uint8": "u1"}[t["dtype"]]
        out[t["name"]] = np.fromfile(os.path.join(folder, "reference", t["file"]), dtype=dt).reshape(t["shape"])
    return out


def onnx_parity(folder, entry, trunk_input):
    """Runs the bundle's graphs with train.onnxcheck on one reference image and
    returns the largest absolute difference from PyTorch's outputs per graph."""
    from . import onnxcheck

    ref = load_reference(folder, entry)
    res = {}
    if "latent" in ref:
        got = onnxcheck.run(os.path.join(folder, "encoder.onnx"), {"image": torch.from_numpy(ref["input"])})
        res["encoder"] = float(np.abs(got["latent"].numpy() - ref["latent"]).max())
    name = "latent" if trunk_input == "latent_hat" else "image"
    got = onnxcheck.run(os.path.join(folder, "trunk.onnx"), {name: torch.from_numpy(ref[trunk_input])})
    res["trunk"] = float(np.abs(got["features"].numpy() - ref["features"]).max())
    for hn, outs in HEAD_OUTPUTS.items():
        path = os.path.join(folder, f"head_{hn}.onnx")
        if not os.path.exists(path):
            continue
        got = onnxcheck.run(path, {"features": torch.from_numpy(ref["features"])})
        res[f"head_{hn}"] = max(float(np.abs(got[o].numpy() - ref[o]).max()) for o in outs)
    return {"engine": "train.onnxcheck", "max_abs_diff": res}


def write_testset(out_dir, test):
    """models/zoo/testset: scene_NNNN.png, mask_NNNN.png (class index per pixel) and labels.json."""
    folder = os.path.join(out_dir, "testset")
    if os.path.exists(folder):
        shutil.rmtree(folder)
    os.makedirs(folder)
    items = []
    for k in range(len(test["labels"])):
        Image.fromarray(test["images"][k]).save(os.path.join(folder, f"scene_{k:04d}.png"), optimize=True)
        Image.fromarray(test["masks"][k]).save(os.path.join(folder, f"mask_{k:04d}.png"), optimize=True)
        items.append({"file": f"scene_{k:04d}.png", "mask": f"mask_{k:04d}.png", "label": int(test["labels"][k]),
                      "boxes": [[int(v) for v in b] for b in test["boxes"][k]]})
    with open(os.path.join(folder, "labels.json"), "w") as f:
        json.dump({"labels": list(D.LABELS), "mask_labels": ["background"] + list(D.LABELS),
                   "box_format": "x0,y0,x1,y1,cls (pixels, x1/y1 exclusive)", "images": items}, f)
        f.write("\n")


def load_testset(out_dir):
    """Reads models/zoo/testset back into the generator's dict form."""
    folder = os.path.join(out_dir, "testset")
    with open(os.path.join(folder, "labels.json")) as f:
        meta = json.load(f)
    imgs = np.stack([np.asarray(Image.open(os.path.join(folder, it["file"])).convert("RGB")) for it in meta["images"]])
    masks = np.stack([np.asarray(Image.open(os.path.join(folder, it["mask"]))) for it in meta["images"]])
    return {"images": imgs, "masks": masks, "labels": np.array([it["label"] for it in meta["images"]]),
            "boxes": [it["boxes"] for it in meta["images"]]}


def remove_stale_students(out_dir, keep):
    """Deletes student bundles of betas no longer configured, so that the zoo
    holds exactly what the pipeline made."""
    for name in sorted(os.listdir(out_dir)):
        path = os.path.join(out_dir, name)
        if name.startswith("fmnist-es-") and name not in keep and os.path.isdir(path):
            shutil.rmtree(path)
            print(f"removed {name}: its beta is no longer configured", flush=True)


def export_all(out_dir, runs, teacher, test, times, config, mean, std):
    """The zoo: the test set, the teacher (full) and one split bundle per beta."""
    os.makedirs(out_dir, exist_ok=True)
    write_testset(out_dir, test)
    test = load_testset(out_dir)  # measure on exactly the shipped files
    teacher = teacher.eval()
    heads = {"classify": teacher.heads.classify, "detect": teacher.heads.detect, "segment": teacher.heads.segment}
    m = export_full_bundle(out_dir, "fmnist-teacher", teacher.stage1, teacher.trunk, heads, test, mean, std,
                           extra={"training": {"cycles": config["teacher"]}})
    print("fmnist-teacher", m["metrics"], flush=True)
    for cfg in config["students"]:
        beta = cfg["beta"]
        tag = beta_tag(beta)
        s = Student(config["latent_channels"], config["encoder_width"], config["decoder_width"],
                    config["refine_width"])
        s.load_state_dict(torch.load(student_checkpoint(runs, cfg, 2)))
        s.eval()
        s.entropy_bottleneck.update(force=True)
        trunk = nn.Sequential(s.decoder, s.trunk)
        heads = {"classify": s.heads.classify, "detect": s.heads.detect, "segment": s.heads.segment}
        m = export_split_bundle(out_dir, f"fmnist-es-{tag}", s.encoder, s.entropy_bottleneck, trunk, heads, test,
                                mean, std, extra={"training": {
                                    "beta": beta, "latent_channels": config["latent_channels"],
                                    "encoder_width": config["encoder_width"], "decoder_width": config["decoder_width"],
                                    "refine_width": config["refine_width"],
                                    "stage1": dict(config["stage1"], iters=cfg["stage1_iters"]),
                                    "stage2": dict(config["stage2"], iters=cfg["stage2_iters"])}})
        print(f"fmnist-es-{tag}", m["metrics"], flush=True)
    remove_stale_students(out_dir, {f"fmnist-es-{beta_tag(c['beta'])}" for c in config["students"]})
    # Wall-clock times vary from run to run, so they live beside the bundles, outside their hashes.
    with open(os.path.join(out_dir, "training-times.json"), "w") as f:
        json.dump(times, f, indent=1, sort_keys=True)
        f.write("\n")
