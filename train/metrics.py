"""Post-processing and metrics, written so the Go side can reproduce them
exactly (docs/BUNDLE.md spells out the same steps).

All arithmetic on model outputs is float64 on the float32 values.
"""
from __future__ import annotations

import math

import numpy as np

from .models import STRIDE

DETECT_PARAMS = {"decoder": "centernet", "stride": STRIDE, "heatmap_activation": "sigmoid",
                 "max_detections": 20, "score_threshold": 0.05, "nms_iou": 0.5, "peak_kernel": 3}


def sigmoid(x):
    x = np.asarray(x, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-x))


def centernet_decode(heatmap, size, offset, params=DETECT_PARAMS):
    """Boxes [x0, y0, x1, y1, cls, score] of one image from raw head outputs.

    heatmap (C, H, W) logits; size (2, H, W) and offset (2, H, W) in cells.
    1. s = sigmoid(heatmap).
    2. A peak is a cell whose s equals the maximum of its k x k neighbourhood
       (k = peak_kernel, cells outside the map ignored) and s >= score_threshold.
    3. Peaks sorted by s descending, ties by flat index c*H*W + y*W + x ascending.
    4. Box: cx = (x + offset[0,y,x]) * stride, cy = (y + offset[1,y,x]) * stride,
       w = size[0,y,x] * stride, h = size[1,y,x] * stride,
       box = [cx - w/2, cy - h/2, cx + w/2, cy + h/2].
    5. Greedy per-class NMS in that order: drop a box whose IoU with a kept box
       of the same class exceeds nms_iou.
    6. Keep the first max_detections.
    """
    s = sigmoid(heatmap)
    C, H, W = s.shape
    k = int(params["peak_kernel"])
    r = k // 2
    padded = np.full((C, H + 2 * r, W + 2 * r), -np.inf)
    padded[:, r:r + H, r:r + W] = s
    mx = np.full_like(s, -np.inf)
    for dy in range(k):
        for dx in range(k):
            mx = np.maximum(mx, padded[:, dy:dy + H, dx:dx + W])
    keep = (s == mx) & (s >= params["score_threshold"])
    idx = np.flatnonzero(keep.reshape(-1))
    scores = s.reshape(-1)[idx]
    order = np.lexsort((idx, -scores))  # primary: score desc, secondary: index asc
    idx, scores = idx[order], scores[order]
    stride = float(params["stride"])
    size = np.asarray(size, dtype=np.float64)
    offset = np.asarray(offset, dtype=np.float64)
    out = []
    for i, sc in zip(idx, scores):
        c, rem = divmod(int(i), H * W)
        y, x = divmod(rem, W)
        cx = (x + offset[0, y, x]) * stride
        cy = (y + offset[1, y, x]) * stride
        w = size[0, y, x] * stride
        h = size[1, y, x] * stride
        box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        if any(o[4] == c and iou(o, box) > params["nms_iou"] for o in out):
            continue
        out.append(box + [c, float(sc)])
        if len(out) >= params["max_detections"]:
            break
    return out


def iou(a, b):
    """IoU of two boxes [x0, y0, x1, y1, ...] in continuous coordinates."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    ua = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1]) + max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def average_precision(dets, gts, num_classes, iou_threshold=0.5):
    """mAP@iou_threshold: VOC all-point interpolated AP per class, averaged over
    classes that appear in the ground truth.

    dets[i]: list of [x0, y0, x1, y1, cls, score] for image i;
    gts[i]: list of [x0, y0, x1, y1, cls].
    Per class, detections of all images sorted by score descending (ties: image
    index, then rank within the image); each is a true positive when its best-IoU
    ground-truth box of that class in its image (first on ties) has IoU >=
    threshold and is not yet matched, else a false positive.
    """
    aps = {}
    for c in range(num_classes):
        npos = sum(1 for g in gts for b in g if b[4] == c)
        if npos == 0:
            continue
        cand = [(d[5], i, r, d) for i, ds in enumerate(dets) for r, d in enumerate(ds) if d[4] == c]
        cand.sort(key=lambda t: (-t[0], t[1], t[2]))
        matched = {}
        tp, fp = [], []
        for _, i, _, d in cand:
            best, bj = 0.0, -1
            for j, g in enumerate(gts[i]):
                if g[4] != c:
                    continue
                o = iou(d, g)
                if o > best:
                    best, bj = o, j
            if bj >= 0 and best >= iou_threshold and not matched.get((i, bj)):
                matched[(i, bj)] = True
                tp.append(1.0)
                fp.append(0.0)
            else:
                tp.append(0.0)
                fp.append(1.0)
        tp, fp = np.cumsum(tp), np.cumsum(fp)
        rec = tp / npos if len(tp) else np.zeros(0)
        prec = tp / np.maximum(tp + fp, np.finfo(np.float64).eps) if len(tp) else np.zeros(0)
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        for k in range(len(mpre) - 2, -1, -1):
            mpre[k] = max(mpre[k], mpre[k + 1])
        ch = np.nonzero(mrec[1:] != mrec[:-1])[0]
        aps[c] = float(np.sum((mrec[ch + 1] - mrec[ch]) * mpre[ch + 1]))
    return float(np.mean(list(aps.values()))) if aps else 0.0, aps


class MetricAccumulator:
    """Accumulates top1, detections for map50 and the confusion matrix for
    miou, for whichever heads a model has: a task is scored when its outputs
    are present and the test set has its ground truth (labels, boxes, masks;
    None when it has not)."""

    def __init__(self, num_classes, params=DETECT_PARAMS, mask_classes=None):
        self.num_classes = num_classes
        self.params = params
        self.mask_classes = num_classes + 1 if mask_classes is None else mask_classes
        self.correct = 0
        self.count = 0
        self.scored = set()
        self.dets, self.gts = [], []
        self.conf = np.zeros((self.mask_classes, self.mask_classes), dtype=np.int64)

    def add(self, out, labels, boxes, masks):
        """out: dict of numpy arrays with batch axis ("logits"; "heatmap", "size",
        "offset"; "mask_logits", each optional); labels (B,), boxes list, masks
        (B, H, W), each None when the test set lacks it."""
        n_img = len(next(iter(out.values())))
        self.count += n_img
        if "logits" in out and labels is not None:
            self.scored.add("classify")
            logits = np.asarray(out["logits"])
            self.correct += int((logits.argmax(1) == np.asarray(labels)).sum())
        if "heatmap" in out and boxes is not None:
            self.scored.add("detect")
            for b in range(n_img):
                self.dets.append(centernet_decode(out["heatmap"][b], out["size"][b], out["offset"][b], self.params))
                self.gts.append([list(x) for x in boxes[b]])
        if "mask_logits" in out and masks is not None:
            self.scored.add("segment")
            pred = np.asarray(out["mask_logits"]).argmax(1)
            n = self.mask_classes
            self.conf += np.bincount(np.asarray(masks).astype(np.int64).reshape(-1) * n + pred.reshape(-1),
                                     minlength=n * n).reshape(n, n)

    def result(self):
        """The metrics of the scored tasks (top1, map50, miou) and the image count."""
        res = {}
        if "classify" in self.scored:
            res["top1"] = self.correct / max(self.count, 1)
        if "detect" in self.scored:
            res["map50"], _ = average_precision(self.dets, self.gts, self.num_classes)
        if "segment" in self.scored:
            tp = np.diag(self.conf).astype(np.float64)
            union = self.conf.sum(0) + self.conf.sum(1) - np.diag(self.conf)
            res["miou"] = float((tp[union > 0] / union[union > 0]).mean())
        res["images"] = self.count
        return res


def gaussian_radius(h, w, min_overlap=0.7):
    """CenterNet's gaussian_radius."""
    a1, b1 = 1, h + w
    c1 = w * h * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2 = 4, 2 * (h + w)
    c2 = (1 - min_overlap) * w * h
    r2 = (b2 + math.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3 = 4 * min_overlap, -2 * min_overlap * (h + w)
    c3 = (min_overlap - 1) * w * h
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def centernet_targets(boxes_batch, num_classes, out_size, stride=STRIDE):
    """Heatmap (B, C, S, S), size and offset (B, 2, S, S), and the centre mask (B, S, S)."""
    B, S = len(boxes_batch), out_size
    hm = np.zeros((B, num_classes, S, S), dtype=np.float32)
    sz = np.zeros((B, 2, S, S), dtype=np.float32)
    off = np.zeros((B, 2, S, S), dtype=np.float32)
    ind = np.zeros((B, S, S), dtype=np.float32)
    for b, boxes in enumerate(boxes_batch):
        for x0, y0, x1, y1, c in boxes:
            w, h = (x1 - x0) / stride, (y1 - y0) / stride
            cx, cy = (x0 + x1) / 2 / stride, (y0 + y1) / 2 / stride
            ix, iy = min(int(cx), S - 1), min(int(cy), S - 1)
            r = max(0, int(gaussian_radius(math.ceil(h), math.ceil(w))))
            sigma = (2 * r + 1) / 6
            ys, xs = np.ogrid[-r:r + 1, -r:r + 1]
            g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
            t, bt = max(0, iy - r), min(S, iy + r + 1)
            l, rt = max(0, ix - r), min(S, ix + r + 1)
            region = hm[b, c, t:bt, l:rt]
            np.maximum(region, g[t - iy + r:bt - iy + r, l - ix + r:rt - ix + r], out=region)
            hm[b, c, iy, ix] = 1.0
            sz[b, :, iy, ix] = (w, h)
            off[b, :, iy, ix] = (cx - ix, cy - iy)
            ind[b, iy, ix] = 1.0
    return hm, sz, off, ind
