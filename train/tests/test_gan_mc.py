"""GAN-MC: the AC-GAN's shapes and training, scenes of generated garments, the
Compression Score on a case with a known answer."""
import os

import numpy as np
import pytest
import torch

from train import compression_score as CS
from train import data as D
from train import gan
from train.tests.test_data import check_masks_and_boxes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_generator_and_discriminator_shapes():
    g, d = gan.Generator(width=16), gan.Discriminator(width=16)
    z, y = torch.randn(5, g.latent), torch.arange(5)
    x = g(z, y)
    assert x.shape == (5, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    adv, cls = d(x)
    assert adv.shape == (5,) and cls.shape == (5, D.NUM_CLASSES)


def tiny_garments(n=64):
    images, labels = D.load_fmnist("train")
    return images[:n], labels[:n]


def test_few_step_training_is_deterministic_and_moves_the_generator():
    images, labels = tiny_garments()
    torch.manual_seed(7)  # train() seeds before building, so this is its initial state
    g0 = gan.Generator(width=8)
    g1, d1, hist = gan.train(images, labels, iters=4, seed=7, batch=16, width=8, log_every=1)
    g2, _, _ = gan.train(images, labels, iters=4, seed=7, batch=16, width=8)
    assert len(hist) == 4 and all(np.isfinite(h[1]) and np.isfinite(h[2]) for h in hist)
    for (name, a), b, c in zip(g1.state_dict().items(), g2.state_dict().values(), g0.state_dict().values()):
        assert torch.equal(a, b), name
    moved = [not torch.equal(a, c) for a, c in zip(g1.state_dict().values(), g0.state_dict().values())
             if a.dtype.is_floating_point]
    assert all(moved)


def test_garment_pool_has_the_format_of_fashion_mnist():
    g = gan.Generator(width=8)
    images, labels = gan.garments(g, per_class=3, seed=1)
    real_images, real_labels = tiny_garments(4)
    assert images.dtype == real_images.dtype and images.shape[1:] == real_images.shape[1:]
    assert labels.dtype == real_labels.dtype
    assert labels.tolist() == [k for k in range(D.NUM_CLASSES) for _ in range(3)]


def test_scenes_of_generated_garments_have_the_format_of_real_scenes():
    g = gan.Generator(width=8)
    pool = gan.garments(g, per_class=4, seed=2)
    fake = D.generate("train", 12, seed=9, garments=pool)
    real = D.generate("train", 12, seed=9, source_range=(0, 200))
    assert fake.keys() == real.keys()
    for k in ("images", "masks", "labels"):
        assert fake[k].dtype == real[k].dtype and fake[k].shape == real[k].shape, k
    check_masks_and_boxes(fake["images"], fake["masks"], fake["labels"], fake["boxes"])
    # the garments pasted are the pool's: the pool has every class, so the labels range over classes
    assert set(fake["labels"].tolist()) <= set(range(D.NUM_CLASSES))


@pytest.fixture(scope="module")
def toy():
    """A toy compression task: scenes labelled by one-hot 'teacher' logits of their true class."""
    tr = D.generate("train", 96, seed=11, source_range=(0, 2000))
    te = D.generate("test", 64, seed=12)
    logits = np.eye(D.NUM_CLASSES, dtype=np.float32)[tr["labels"]] * 5
    return (tr["images"], logits), (te["images"], te["labels"])


def test_the_real_set_scores_one_against_itself(toy):
    train_set, test = toy
    r = CS.compression_score(train_set, train_set, test, seed=3)
    assert r["score"] == 1.0
    assert r["top1"] == r["top1_reference"] == CS.student_top1(train_set, test, seed=3)


def test_score_is_the_ratio_of_the_two_students_top1(toy):
    (images, logits), test = toy
    half = (images[:48], logits[:48])
    r = CS.compression_score(half, (images, logits), test, seed=3)
    assert r["top1"] == CS.student_top1(half, test, seed=3)
    assert r["score"] == pytest.approx(r["top1"] / r["top1_reference"])


def test_mixup_of_identical_scenes_is_the_scene():
    one = D.generate("test", 1, seed=4)["images"]
    same = np.repeat(one, 5, axis=0)
    assert np.array_equal(CS.mixup(same, seed=0), same)
    other = D.generate("test", 5, seed=6)["images"]
    mixed = CS.mixup(other, seed=0).astype(int)
    lo = np.minimum(other, other[np.random.default_rng(0).permutation(5)]).astype(int)
    hi = np.maximum(other, other[np.random.default_rng(0).permutation(5)]).astype(int)
    assert ((mixed >= lo) & (mixed <= hi)).all()


def test_onnx_teacher_gives_one_logit_vector_per_scene():
    bundle = os.path.join(ROOT, "models", "zoo", "fmnist-teacher")
    if not os.path.exists(os.path.join(bundle, "trunk.onnx")):
        pytest.skip("no shipped teacher bundle")
    scenes = D.generate("test", 3, seed=7)["images"]
    logits = CS.OnnxTeacher(bundle).logits(scenes, batch=2)
    assert logits.shape == (3, D.NUM_CLASSES) and logits.dtype == np.float32
    assert np.isfinite(logits).all()
