"""Checkpoint names follow the configuration they were made with."""
import copy

import pytest
import torch

from train import config as C
from train import pipeline as P
from train.models import Refine


@pytest.fixture
def config(monkeypatch):
    """A copy of CONFIG that both the naming (train.config) and the training
    (train.pipeline) read, so a test may change it."""
    c = copy.deepcopy(C.CONFIG)
    monkeypatch.setattr(C, "CONFIG", c)
    monkeypatch.setattr(P, "CONFIG", c)
    return c


def test_teacher_checkpoint_changes_with_its_cycles_only(config):
    p0, p1 = C.teacher_checkpoint("runs", 0), C.teacher_checkpoint("runs", 1)
    assert p0 != p1
    config["teacher"][1]["iters"] += 1
    assert C.teacher_checkpoint("runs", 0) == p0  # a later cycle leaves earlier ones valid
    assert C.teacher_checkpoint("runs", 1) != p1
    config["train_scenes"] += 1
    assert C.teacher_checkpoint("runs", 0) != p0


def test_student_checkpoint_changes_with_what_the_stage_depends_on(config):
    cfg = config["students"][0]
    s1, s2 = C.student_checkpoint("runs", cfg, 1), C.student_checkpoint("runs", cfg, 2)
    assert C.beta_tag(cfg["beta"]) in s1 and s1 != s2
    config["stage2"]["lr"] *= 2
    assert C.student_checkpoint("runs", cfg, 1) == s1  # stage 1 does not depend on stage 2
    assert C.student_checkpoint("runs", cfg, 2) != s2
    s2 = C.student_checkpoint("runs", cfg, 2)
    config["refine_width"] += 1  # the refine block only trains in stage 2
    assert C.student_checkpoint("runs", cfg, 1) == s1
    assert C.student_checkpoint("runs", cfg, 2) != s2
    config["encoder_width"] += 1
    assert C.student_checkpoint("runs", cfg, 1) != s1
    config["encoder_width"] -= 1
    config["teacher"][0]["lr"] *= 2  # another teacher: every student stage is stale
    assert C.student_checkpoint("runs", cfg, 1) != s1
    other = config["students"][1]
    assert C.student_checkpoint("runs", other, 1) != s1


def test_refine_block_starts_as_identity_on_decoder_features():
    torch.manual_seed(0)
    block = Refine(32, 16)
    f = torch.relu(torch.randn(2, 32, 24, 24))  # the decoder's features end in a ReLU
    for mode in (block.train, block.eval):
        mode()
        assert torch.equal(block(f), f)


def test_stage1_trains_the_coder_through_the_frozen_trunk(config, tmp_path):
    config["batch"] = 4
    assert config["stage1"]["distil_depth"] == 4  # the deepest target, the FPN output
    torch.manual_seed(0)
    student = P.student_from_teacher(P.Teacher().eval())
    teacher = P.Teacher().eval()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    P.train_stage1(student, teacher, 0.1, 2, None, str(tmp_path), "t")
    after = student.state_dict()
    changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder", "entropy_bottleneck", "decoder"}
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("decoder.refine"))
