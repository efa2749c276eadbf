"""Dynamic convolution (train/dynconv.py): the layer against the per-sample
formula, its attention, its temperature limit, both export forms through
ONNX, the dynamic student's encoder and its place in the pipeline."""
import copy
import io
import os

import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from train import config as C
from train import fromonnx, onnxcheck
from train import pipeline as P
from train.dynconv import DynamicConv2d, dynamic_layers, set_form, set_temperature, temperature_at
from train.layers import fold_layers
from train.models import Encoder, Student, Teacher

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def layer(seed=0, T=1.0, **kw):
    torch.manual_seed(seed)
    spec = dict(in_channels=8, out_channels=6, kernel_size=5, stride=2, padding=2, K=4, temperature=T)
    spec.update(kw)
    return DynamicConv2d(**spec).eval()


def per_sample(d, x):
    """conv(x_i, sum_k pi_k(x_i) W_k) for each sample alone, in float64."""
    d64 = copy.deepcopy(d).double()
    x = x.double()
    out = []
    for i in range(x.shape[0]):
        pi = d64.attention(x[i:i + 1])[0]
        w = (pi.view(-1, 1, 1, 1, 1) * d64.weight).sum(0)
        b = None if d64.bias is None else (pi.view(-1, 1) * d64.bias).sum(0)
        out.append(F.conv2d(x[i:i + 1], w, b, d.stride, d.padding))
    return torch.cat(out)


@pytest.mark.parametrize("form", ["aggregate", "mixed"])
@pytest.mark.parametrize("bias", [False, True])
def test_both_forms_compute_the_per_sample_kernel(form, bias):
    d = layer(T=3.0, bias=bias)
    if bias:
        with torch.no_grad():
            d.bias.normal_()
    d.form = form
    x = torch.randn(3, 8, 19, 21)
    y = d(x)
    assert y.shape == (3, 6, 10, 11)
    assert torch.allclose(y.double(), per_sample(d, x), atol=1e-5)


def test_attention_sums_to_one_and_differs_per_sample():
    d = layer(T=1.0)
    with torch.no_grad():
        d.fc2.weight.mul_(50)  # a sharp attention, so samples are told apart
    pi = d.attention(torch.randn(5, 8, 12, 12) * torch.arange(1, 6).view(5, 1, 1, 1))
    assert pi.shape == (5, 4)
    assert torch.all(pi >= 0)
    assert torch.allclose(pi.sum(1), torch.ones(5), atol=1e-6)
    assert (pi.max(0).values - pi.min(0).values).max() > 1e-3


def test_large_temperature_is_the_mean_kernel():
    d = layer(T=1e7)
    with torch.no_grad():
        d.fc2.weight.mul_(10)
    x = torch.randn(2, 8, 16, 16)
    mean = F.conv2d(x, d.weight.mean(0), None, 2, 2)
    assert torch.allclose(d(x), mean, atol=1e-5)
    d.temperature = 1.0  # and at T = 1 this layer is not the mean kernel
    assert not torch.allclose(d(x), mean, atol=1e-3)


def test_temperature_schedule():
    assert temperature_at(0, 100) == 30.0
    assert temperature_at(50, 100) == pytest.approx(15.5)
    assert temperature_at(100, 100) == 1.0 and temperature_at(10_000, 100) == 1.0
    assert temperature_at(0, 0) == 1.0


def test_from_conv_computes_the_conv_whatever_the_attention():
    torch.manual_seed(1)
    conv = nn.Conv2d(8, 6, 5, 2, 2, bias=False)
    d = DynamicConv2d.from_conv(conv, K=3).eval()
    x = torch.randn(2, 8, 14, 14)
    for form in ("aggregate", "mixed"):
        d.form = form
        assert torch.allclose(d(x), conv(x), atol=1e-5)


def onnx_of(module, x):
    buf = io.BytesIO()
    torch.onnx.export(module, x, buf, opset_version=13, input_names=["image"], output_names=["latent"],
                      dynamic_axes={"image": {0: "batch"}, "latent": {0: "batch"}})
    return onnx.load_from_string(buf.getvalue())


def dynamic_encoder(seed=0, layers=(0, 1, 2)):
    torch.manual_seed(seed)
    enc = Encoder(24, width=16, dynamic=layers, K=4).eval()
    with torch.no_grad():
        for m in dynamic_layers(enc):
            m.fc2.weight.mul_(20)  # attention far from uniform
    return enc


@pytest.mark.parametrize("form,batch", [("mixed", 1), ("mixed", 3), ("aggregate", 1)])
def test_exported_encoder_equals_pytorch(form, batch):
    enc = dynamic_encoder()
    set_form(enc, form)
    plain = fold_layers(enc)
    x = torch.randn(batch, 3, 96, 96)
    model = onnx_of(plain, x[:1])
    ops = {n.op_type for n in model.graph.node}
    assert ops <= onnxcheck.NATIVE_OPS
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)
    if form == "aggregate":  # the kernel is computed in the graph and fed to Conv as its weight
        made_by = {o: n.op_type for n in model.graph.node for o in n.output}
        convs = [n for n in model.graph.node if n.op_type == "Conv"]
        assert [made_by.get(n.input[1]) for n in convs].count("Reshape") == 3
    with torch.no_grad():
        want = enc(x)
    got = onnxcheck.run_model(model, {"image": x})["latent"]
    assert got.shape == want.shape == (batch, 24, 23, 23)
    assert torch.allclose(got, want, atol=1e-4 * max(1.0, float(want.abs().max())))


def test_aggregate_graph_refuses_a_batch_of_two():
    enc = dynamic_encoder()
    set_form(enc, "aggregate")
    model = onnx_of(fold_layers(enc), torch.randn(1, 3, 96, 96))
    with pytest.raises(Exception):
        onnxcheck.run_model(model, {"image": torch.randn(2, 3, 96, 96)})


def test_dynamic_student_keeps_the_latent_shape():
    x = torch.randn(2, 3, 96, 96)
    plain = Student(24, 16, 32, 16)
    for layers in [(0,), (2,), (0, 1, 2)]:
        s = Student(24, 16, 32, 16, dynamic=layers, K=4)
        assert len(dynamic_layers(s.encoder)) == len(layers)
        assert s.encoder(x).shape == plain.encoder(x).shape
        assert [p.shape for p in s.entropy_bottleneck.parameters()] == \
            [p.shape for p in plain.entropy_bottleneck.parameters()]


def test_plain_encoder_is_unchanged_by_the_switch():
    """dynamic=() builds the same modules from the same RNG state as before the switch existed."""
    torch.manual_seed(3)
    a = Encoder(24, width=16)
    torch.manual_seed(3)
    b = Encoder(24, width=16, dynamic=())
    assert not dynamic_layers(a)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.fixture
def config(monkeypatch):
    c = copy.deepcopy(C.CONFIG)
    monkeypatch.setattr(C, "CONFIG", c)
    monkeypatch.setattr(P, "CONFIG", c)
    return c


def test_dynamic_student_checkpoint_name_and_stage1_anneals(config, tmp_path):
    plain = dict(config["students"][0])
    dyn = dict(plain, dynamic={"layers": [0, 1, 2], "K": 4, "anneal_steps": 2})
    assert C.student_checkpoint("runs", plain, 1) != C.student_checkpoint("runs", dyn, 1)
    config["batch"] = 4
    config["encoder_width"], config["decoder_width"], config["refine_width"] = 16, 16, 16
    torch.manual_seed(0)
    teacher = Teacher().eval()
    student = P.student_from_teacher(teacher, dyn)
    assert len(dynamic_layers(student.encoder)) == 3
    seen = []
    hook = student.encoder.layers[0].register_forward_hook(lambda m, i, o: seen.append(m.temperature))
    before = student.encoder.layers[0].weight.clone()
    P.train_stage1(student, teacher, 0.1, 3, None, str(tmp_path), "t", anneal_steps=2)
    hook.remove()
    assert seen[:3] == [30.0, 15.5, 1.0]
    assert all(m.temperature == 1.0 for m in dynamic_layers(student.encoder))
    assert not torch.equal(before, student.encoder.layers[0].weight)


def test_set_temperature_and_form_reach_every_dynamic_layer():
    enc = dynamic_encoder()
    set_temperature(enc, 7.0)
    set_form(enc, "mixed")
    assert all(m.temperature == 7.0 and m.form == "mixed" for m in dynamic_layers(enc))
    with pytest.raises(ValueError):
        set_form(enc, "other")


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, "models/zoo/fmnist-teacher/trunk.onnx")),
                    reason="no shipped teacher bundle")
def test_teacher_loads_from_its_bundle():
    """fromonnx: the shipped teacher's graphs back into models.Teacher (load checks the outputs itself)."""
    t = Teacher()
    x = torch.randn(1, 3, 96, 96)
    diff = fromonnx.load(nn.Sequential(t.stage1, t.trunk), os.path.join(ROOT, "models/zoo/fmnist-teacher/trunk.onnx"),
                         x, "image")
    assert diff < 1e-4
    with pytest.raises(ValueError):  # a graph of another layout is refused, not half-loaded
        fromonnx.load(nn.Sequential(t.stage1), os.path.join(ROOT, "models/zoo/fmnist-teacher/trunk.onnx"), x, "image")
