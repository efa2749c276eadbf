"""CenterNet decoding, mAP and mIoU on cases with known answers."""
import numpy as np

from train import data as D
from train.metrics import MetricAccumulator, average_precision, centernet_decode, centernet_targets, iou


def ideal_outputs(boxes, S=24):
    hm, sz, off, ind = centernet_targets([boxes], D.NUM_CLASSES, S)
    logits = np.where(hm[0] == 1.0, 8.0, -8.0).astype(np.float32)
    return logits, sz[0], off[0]


def test_decode_recovers_boxes():
    boxes = [[10, 12, 40, 50, 3], [50, 20, 90, 70, 7]]
    heat, size, off = ideal_outputs(boxes)
    dets = centernet_decode(heat, size, off)
    assert len(dets) == 2
    for d in dets:
        g = [b for b in boxes if b[4] == d[4]][0]
        assert np.allclose(d[:4], g[:4], atol=1e-4)


def test_ap_perfect_and_with_false_positive():
    gts = [[[0, 0, 10, 10, 1]], [[5, 5, 20, 20, 1]]]
    dets = [[[0, 0, 10, 10, 1, 0.9]], [[5, 5, 20, 20, 1, 0.8]]]
    m, aps = average_precision(dets, gts, 10)
    assert m == 1.0 and list(aps) == [1]
    # a higher-scoring false positive first: precision 1/2 at recall 1/2, 2/3 at recall 1
    dets = [[[0, 0, 10, 10, 1, 0.9], [50, 50, 60, 60, 1, 0.95]], [[5, 5, 20, 20, 1, 0.8]]]
    m, _ = average_precision(dets, gts, 10)
    assert abs(m - (0.5 * 2 / 3 + 0.5 * 2 / 3)) < 1e-12
    # a duplicate of a matched box is a false positive
    dets = [[[0, 0, 10, 10, 1, 0.9], [0, 0, 10, 10, 1, 0.85]], []]
    m, _ = average_precision(dets, gts, 10)
    assert abs(m - 0.5) < 1e-12


def test_iou():
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [10, 0, 20, 10]) == 0.0
    assert abs(iou([0, 0, 10, 10], [5, 0, 15, 10]) - 1 / 3) < 1e-12


def test_accumulator_perfect_predictions():
    d = D.generate("test", 6, seed=9)
    acc = MetricAccumulator(D.NUM_CLASSES)
    for k in range(6):
        heat, size, off = ideal_outputs(d["boxes"][k])
        logits = np.full((1, 10), -5.0, dtype=np.float32)
        logits[0, d["labels"][k]] = 5.0
        mask_logits = np.eye(11, dtype=np.float32)[d["masks"][k]].transpose(2, 0, 1)[None]
        acc.add({"logits": logits, "heatmap": heat[None], "size": size[None], "offset": off[None],
                 "mask_logits": mask_logits}, d["labels"][k:k + 1], d["boxes"][k:k + 1], d["masks"][k:k + 1])
    r = acc.result()
    assert r["top1"] == 1.0 and r["miou"] == 1.0 and r["images"] == 6
    assert r["map50"] > 0.95  # two same-class centres may share a cell
