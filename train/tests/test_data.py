"""The scene generator: masks and boxes agree, splits are deterministic and disjoint."""
import numpy as np
import pytest

from train import data as D
from train import pipeline as P


@pytest.fixture(scope="module")
def scenes():
    return D.generate("test", 40, seed=5)


def check_masks_and_boxes(images, masks, labels, boxes):
    for k in range(len(labels)):
        m = masks[k]
        assert images[k].shape == (D.SIZE, D.SIZE, 3) and images[k].dtype == np.uint8
        assert 1 <= len(boxes[k]) <= 4
        covered = np.zeros_like(m, dtype=bool)
        for x0, y0, x1, y1, c in boxes[k]:
            assert 0 <= x0 < x1 <= D.SIZE and 0 <= y0 < y1 <= D.SIZE and 0 <= c < D.NUM_CLASSES
            inside = m[y0:y1, x0:x1] == c + 1
            # the box is tight around visible pixels of its class: each border line holds one
            assert inside[:, 0].any() and inside[:, -1].any() and inside[0, :].any() and inside[-1, :].any()
            covered[y0:y1, x0:x1] |= m[y0:y1, x0:x1] == c + 1
        # every garment pixel lies in a box of its own class
        assert np.array_equal(covered, m > 0)
        assert labels[k] in [b[4] for b in boxes[k]]


def test_masks_and_boxes_agree(scenes):
    check_masks_and_boxes(scenes["images"], scenes["masks"], scenes["labels"], scenes["boxes"])


def test_masks_and_boxes_agree_when_a_garment_cannot_be_placed(monkeypatch):
    # an occluded garment must keep all its pixels: most later garments find no
    # place, and the ones after a skipped one must still get their own instance id
    monkeypatch.setattr(D, "MIN_VISIBLE", 1.0)
    d = D.generate("test", 60, seed=7)
    check_masks_and_boxes(d["images"], d["masks"], d["labels"], d["boxes"])
    assert any(len(b) > 1 for b in d["boxes"])


def test_label_is_largest_visible_garment(scenes):
    for k in range(len(scenes["labels"])):
        classes = {b[4] for b in scenes["boxes"][k]}
        if len(scenes["boxes"][k]) == len(classes):  # one garment per class: areas readable from the mask
            areas = {c: int((scenes["masks"][k] == c + 1).sum()) for c in classes}
            assert max(areas, key=areas.get) == scenes["labels"][k]


def test_deterministic_from_seed(scenes):
    again = D.generate("test", 40, seed=5)
    assert np.array_equal(again["images"], scenes["images"])
    assert again["boxes"] == scenes["boxes"]
    other = D.generate("test", 40, seed=6)
    assert not np.array_equal(other["images"], scenes["images"])


def test_splits_come_from_disjoint_garments():
    tr_img, tr_lab = D.load_fmnist("train")
    te_img, te_lab = D.load_fmnist("test")
    assert tr_img.shape == (60000, 28, 28) and te_img.shape == (10000, 28, 28)
    assert set(np.unique(tr_lab)) == set(range(10))


def test_flip_augmentation_keeps_boxes_on_masks(scenes):
    (x, masks, labels, boxes, targets), = list(P.batches(scenes, 16, 1, seed=3))
    imgs = np.zeros((16, D.SIZE, D.SIZE, 3), dtype=np.uint8)
    check_masks_and_boxes(imgs, masks.numpy(), labels.numpy(), boxes)
    hm, sz, off, ind = targets
    assert int(ind.sum()) <= sum(len(b) for b in boxes) and float(hm.max()) == 1.0


def test_cache_round_trip(tmp_path, scenes):
    path = str(tmp_path / "c.npz")
    D.save_cache(path, scenes)
    back = D.load_cache(path)
    assert np.array_equal(back["masks"], scenes["masks"]) and back["boxes"] == scenes["boxes"]


def test_stream_is_fresh_and_reproducible():
    """Every batch of the stream is new, and the stream is the same on every run."""
    first = [d["labels"].tolist() + [b for bx in d["boxes"] for b in bx[0]] for d, _ in D.stream("test", 4, 3, seed=5)]
    again = [d["labels"].tolist() + [b for bx in d["boxes"] for b in bx[0]] for d, _ in D.stream("test", 4, 3, seed=5)]
    assert first == again
    assert len({str(x) for x in first}) == 3
    d, _ = next(D.stream("test", 4, 1, seed=6))
    assert d["images"].shape == (4, D.SIZE, D.SIZE, 3) and d["masks"].shape == (4, D.SIZE, D.SIZE)
