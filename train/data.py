"""Fashion-MNIST scenes: a synthetic data set that exercises classification,
detection and segmentation at once.

Each scene is a 96 x 96 RGB canvas with a varied background (solid colour,
linear gradient, smooth noise, stripes, or a crop of one of the photographs in
Debian's python3-skimage data folder) and 1 to 4 Fashion-MNIST garments
pasted at random scale, position and colour, later ones occluding earlier ones.

Per scene the generator returns:
  image  uint8 (H, W, 3)
  mask   uint8 (H, W), 0 = background, 1 + k = garment class k
  boxes  list of [x0, y0, x1, y1, cls]: the tight box of each garment's
         visible pixels, x1 and y1 exclusive (pixel units)
  label  class of the garment with the largest visible area

Every garment keeps at least MIN_VISIBLE of its own pixels visible, and the
largest garment's visible area is at least LABEL_MARGIN times the second's, so
the label is unambiguous and every garment in the mask has exactly one box.
Train scenes use Fashion-MNIST's training images, test scenes its test images,
so no test garment is seen in training.
"""
from __future__ import annotations

import gzip
import multiprocessing as mp
import os
import queue
import struct

import numpy as np
from PIL import Image

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
SKIMAGE_DIR = "/usr/lib/python3/dist-packages/skimage/data"
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
NUM_CLASSES = len(LABELS)
SIZE = 96
PHOTOS = ["astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png",
          "coffee.png", "coins.png", "grass.png", "gravel.png", "ihc.png",
          "moon.png", "motorcycle_left.png", "motorcycle_right.png",
          "clock_motion.png"]
MIN_VISIBLE = 0.5
LABEL_MARGIN = 1.25
INK = 0.12  # a garment pixel is one whose Fashion-MNIST intensity exceeds this


def load_fmnist(split: str, root: str = FMNIST_DIR):
    """Returns (images uint8 (N, 28, 28), labels uint8 (N,)) of 'train' or 'test'."""
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(os.path.join(root, f"{prefix}-images-idx3-ubyte.gz"), "rb") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            raise ValueError(f"fashion-mnist {split} images: bad magic {magic}")
        images = np.frombuffer(f.read(n * h * w), dtype=np.uint8).reshape(n, h, w)
    with gzip.open(os.path.join(root, f"{prefix}-labels-idx1-ubyte.gz"), "rb") as f:
        magic, n2 = struct.unpack(">II", f.read(8))
        if magic != 2049 or n2 != n:
            raise ValueError(f"fashion-mnist {split} labels: bad header")
        labels = np.frombuffer(f.read(n2), dtype=np.uint8)
    return images, labels


def load_photos(root: str = SKIMAGE_DIR):
    """The background photographs as float32 RGB arrays in [0, 1]."""
    out = []
    for name in PHOTOS:
        path = os.path.join(root, name)
        if os.path.exists(path):
            out.append(np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0)
    return out


def _background(rng: np.random.Generator, photos) -> np.ndarray:
    s = SIZE
    kind = rng.integers(0, 5 if photos else 4)
    if kind == 0:  # solid
        return np.broadcast_to(rng.random(3, dtype=np.float32), (s, s, 3)).copy()
    if kind == 1:  # linear gradient between two colours
        a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
        ang = rng.uniform(0, 2 * np.pi)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / (s - 1)
        t = np.cos(ang) * xx + np.sin(ang) * yy
        t = (t - t.min()) / max(t.max() - t.min(), 1e-6)
        return a * (1 - t[..., None]) + b * t[..., None]
    if kind == 2:  # smooth noise: a coarse random grid upsampled bilinearly
        g = int(rng.integers(3, 13))
        coarse = (rng.random((g, g, 3)) * 255).astype(np.uint8)
        img = Image.fromarray(coarse).resize((s, s), Image.BILINEAR)
        return np.asarray(img, dtype=np.float32) / 255.0
    if kind == 3:  # stripes
        a, b = rng.random(3, dtype=np.float32), rng.random(3, dtype=np.float32)
        period = rng.uniform(6, 24)
        ang = rng.uniform(0, np.pi)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
        t = ((np.cos(ang) * xx + np.sin(ang) * yy) / period) % 1.0 < 0.5
        return np.where(t[..., None], a, b).astype(np.float32)
    photo = photos[rng.integers(0, len(photos))]
    h, w, _ = photo.shape
    crop = int(rng.integers(s, min(h, w, 3 * s) + 1))
    y0, x0 = rng.integers(0, h - crop + 1), rng.integers(0, w - crop + 1)
    c = photo[y0:y0 + crop, x0:x0 + crop]
    if crop != s:
        c = np.asarray(Image.fromarray((c * 255).astype(np.uint8)).resize((s, s), Image.BILINEAR),
                       dtype=np.float32) / 255.0
    if rng.random() < 0.5:
        c = c[:, ::-1]
    return c.copy()


def _garment(img28: np.ndarray, size: int) -> np.ndarray:
    """Garment intensity in [0, 1] resized to size x size."""
    g = Image.fromarray(img28).resize((size, size), Image.BILINEAR)
    return np.asarray(g, dtype=np.float32) / 255.0


def make_scene(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray, photos):
    """One scene (image, mask, boxes, label); see the module doc."""
    while True:
        out = _try_scene(rng, images, labels, photos)
        if out is not None:
            return out


def _try_scene(rng, images, labels, photos):
    s = SIZE
    canvas = _background(rng, photos)
    inst = np.zeros((s, s), dtype=np.int16)  # 0 = background, i + 1 = garment i
    n = int(rng.integers(1, 5))
    classes, areas = [], []
    for i in range(n):
        k = len(classes)  # garments placed so far; this one's instance id is k + 1
        placed = False
        for _ in range(10):
            size = int(rng.integers(36, 73)) if i == 0 else int(rng.integers(20, 45))
            idx = int(rng.integers(0, len(images)))
            g = _garment(images[idx], size)
            ink = g > INK
            if ink.sum() < 20:
                continue
            y0, x0 = int(rng.integers(0, s - size + 1)), int(rng.integers(0, s - size + 1))
            region = inst[y0:y0 + size, x0:x0 + size]
            trial = region.copy()
            trial[ink] = k + 1
            full = inst.copy()
            full[y0:y0 + size, x0:x0 + size] = trial
            ok = all((full == j + 1).sum() >= MIN_VISIBLE * areas[j] for j in range(k))
            if not ok:
                continue
            # colour: keep contrast against the background under the garment
            bg_mean = canvas[y0:y0 + size, x0:x0 + size][ink].mean(axis=0)
            for _ in range(20):
                col = rng.random(3, dtype=np.float32)
                if np.abs(col - bg_mean).sum() > 0.6:
                    break
            shade = (0.45 + 0.55 * g)[..., None] * col
            patch = canvas[y0:y0 + size, x0:x0 + size]
            patch[ink] = shade[ink]
            inst = full
            classes.append(int(labels[idx]))
            areas.append(int(ink.sum()))
            placed = True
            break
        if not placed and i == 0:
            return None
    vis = np.array([(inst == j + 1).sum() for j in range(len(classes))])
    order = np.argsort(-vis, kind="stable")
    if len(vis) > 1 and vis[order[0]] < LABEL_MARGIN * vis[order[1]]:
        return None
    mask = np.zeros((s, s), dtype=np.uint8)
    boxes = []
    for j, c in enumerate(classes):
        m = inst == j + 1
        mask[m] = c + 1
        ys, xs = np.nonzero(m)
        boxes.append([int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1, c])
    image = np.clip(np.round(canvas * 255.0), 0, 255).astype(np.uint8)
    return image, mask, boxes, classes[int(order[0])]


def generate(split: str, count: int, seed: int, source_range=None, garments=None):
    """Generates count scenes from Fashion-MNIST's split, deterministically from seed.

    source_range (lo, hi) restricts the garments to images[lo:hi] of that split
    (the training pipeline holds the last 5000 training images out for validation).
    garments, a pair (uint8 (M, 28, 28), labels (M,)) as load_fmnist returns,
    replaces the split's garments (e.g. a GAN's, train/gan.py); split and
    source_range are then ignored.
    Returns dict(images (N,H,W,3) uint8, masks (N,H,W) uint8, labels (N,) int64,
    boxes list of lists).
    """
    images, labels = garments if garments is not None else _source(split, source_range)
    return _scenes(np.random.default_rng(seed), count, images, labels, load_photos())


def _source(split: str, source_range=None):
    images, labels = load_fmnist(split)
    if source_range is not None:
        lo, hi = source_range
        images, labels = images[lo:hi], labels[lo:hi]
    return images, labels


def _scenes(rng, count, images, labels, photos):
    out_i = np.zeros((count, SIZE, SIZE, 3), dtype=np.uint8)
    out_m = np.zeros((count, SIZE, SIZE), dtype=np.uint8)
    out_l = np.zeros(count, dtype=np.int64)
    out_b = []
    for k in range(count):
        img, mask, boxes, label = make_scene(rng, images, labels, photos)
        out_i[k], out_m[k], out_l[k] = img, mask, label
        out_b.append(boxes)
    return {"images": out_i, "masks": out_m, "labels": out_l, "boxes": out_b}


def stream(split: str, batch: int, count: int, seed: int, source_range=None, prefetch: int = 8):
    """Yields count batches of batch fresh scenes each, never repeating a scene.

    Batch k comes from the generator seeded with (seed, k) and its own rng is
    yielded with it (for augmentation), so the stream is the same however fast it
    is consumed. A worker process generates ahead while the caller trains.
    """
    ctx = mp.get_context("fork")
    q = ctx.Queue(maxsize=prefetch)
    worker = ctx.Process(target=_produce, args=(q, split, batch, count, seed, source_range), daemon=True)
    worker.start()
    try:
        for _ in range(count):
            item = _next(q, worker)
            if isinstance(item, BaseException):
                raise RuntimeError("scene stream worker failed") from item
            yield item
    finally:
        worker.terminate()
        worker.join()


def _next(q, worker):
    """The worker's next item; an error, not a hang, if the worker died without one."""
    while True:
        try:
            return q.get(timeout=1.0)
        except queue.Empty:
            if not worker.is_alive():
                raise RuntimeError(f"scene stream worker exited with code {worker.exitcode}") from None


def _produce(q, split, batch, count, seed, source_range):
    try:
        images, labels = _source(split, source_range)
        photos = load_photos()
        for k in range(count):
            rng = np.random.default_rng([seed, k])
            q.put((_scenes(rng, batch, images, labels, photos), rng))
    except BaseException as e:  # handed to the consumer, which raises it
        q.put(e)


def save_cache(path: str, d) -> None:
    nb = np.array([len(b) for b in d["boxes"]], dtype=np.int64)
    flat = np.array([x for b in d["boxes"] for x in b], dtype=np.int64).reshape(-1, 5)
    tmp = path + ".tmp.npz"
    np.savez(tmp, images=d["images"], masks=d["masks"], labels=d["labels"],
             box_counts=nb, boxes=flat)
    os.replace(tmp, path)


def load_cache(path: str):
    z = np.load(path)
    nb, flat = z["box_counts"], z["boxes"]
    boxes, k = [], 0
    for c in nb:
        boxes.append(flat[k:k + c].tolist())
        k += c
    return {"images": z["images"], "masks": z["masks"], "labels": z["labels"], "boxes": boxes}


def cached(cache_dir: str, split: str, count: int, seed: int, source_range=None):
    """generate(), memoised as an .npz under cache_dir."""
    os.makedirs(cache_dir, exist_ok=True)
    rng_tag = "all" if source_range is None else f"{source_range[0]}-{source_range[1]}"
    path = os.path.join(cache_dir, f"{split}-{rng_tag}-n{count}-s{seed}.npz")
    if os.path.exists(path):
        return load_cache(path)
    d = generate(split, count, seed, source_range)
    save_cache(path, d)
    return d
