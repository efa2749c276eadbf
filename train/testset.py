"""Test sets in the format of docs/BUNDLE.md ("Test set"): a folder of
images with labels.json. Each image's ground truth is optional per task:
"label" (classification), "boxes" (detection), "mask" (segmentation); a task
is scored only when every image has its ground truth."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
from PIL import Image

from . import data as D


def write_testset(out_dir, test):
    """out_dir/testset: scene_NNNN.png, mask_NNNN.png (class index per pixel) and labels.json."""
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
    """Reads out_dir/testset (the shipped test set) back."""
    return load(os.path.join(out_dir, "testset"))


def load(folder):
    """Reads a test set folder: a dict with "images" (N, H, W, 3) uint8,
    "files", "label_names", "mask_labels" (or None), and the ground truth
    "labels" (N,), "boxes" (list) and "masks" (N, H, W), each None when some
    image lacks it."""
    with open(os.path.join(folder, "labels.json")) as f:
        meta = json.load(f)
    items = meta.get("images") or []
    if not items:
        raise ValueError(f"test set {folder}: labels.json lists no images")
    imgs = [np.asarray(Image.open(os.path.join(folder, it["file"])).convert("RGB")) for it in items]
    if len({im.shape for im in imgs}) != 1:
        raise ValueError(f"test set {folder}: the images differ in size")
    out = {"folder": folder, "images": np.stack(imgs), "files": [it["file"] for it in items],
           "label_names": list(meta.get("labels") or []), "mask_labels": meta.get("mask_labels"),
           "labels": None, "boxes": None, "masks": None}
    if all("label" in it for it in items):
        out["labels"] = np.array([it["label"] for it in items])
    if all("boxes" in it for it in items):
        out["boxes"] = [it["boxes"] for it in items]
    if all(it.get("mask") for it in items):
        out["masks"] = np.stack([np.asarray(Image.open(os.path.join(folder, it["mask"]))) for it in items])
    return out


def lacks(test, task):
    """Why test cannot score task ("classify", "detect", "segment"), or None."""
    need = {"classify": ("labels", "a 'label'"), "detect": ("boxes", "'boxes'"), "segment": ("masks", "a 'mask'")}
    key, what = need[task]
    if test[key] is None:
        return f"not every image of the test set has {what}"
    return None
