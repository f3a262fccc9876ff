"""Model loading: vgg16-shapes (embedded, hashed), vgg16 (offline failure path), auto."""
import json
import shutil
import time

import pytest
import torch
from torch import nn

import xaikit as xk
from xaikit import models
from xaikit.data import SHAPES_CLASSES, make_shapes
from xaikit.train import accuracy, fuse_batchnorm, train_shapes


def _layout(model):
    return [(name, type(m).__name__) for name, m in model.named_modules()
            if next(m.children(), None) is None]


def test_shapes_model_has_torchvision_vgg16_layout(shapes_model):
    from torchvision.models import vgg16

    with torch.device("meta"):
        reference = vgg16(weights=None)
    assert _layout(shapes_model) == _layout(reference)
    convs = [n for n, m in shapes_model.named_modules() if isinstance(m, nn.Conv2d)]
    linears = [n for n, m in shapes_model.named_modules() if isinstance(m, nn.Linear)]
    assert len(convs) == 13 and convs[0] == "features.0" and convs[-1] == "features.28"
    assert linears == ["classifier.0", "classifier.3", "classifier.6"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in shapes_model.modules())


def test_shapes_model_state(shapes_model):
    assert not shapes_model.training
    assert not any(p.requires_grad for p in shapes_model.parameters())
    assert xk.model_spec(shapes_model).name == "vgg16-shapes"
    assert xk.class_names(shapes_model) == SHAPES_CLASSES


def test_shapes_accuracy_and_softmax_on_unseen_seeds(shapes_model):
    # seeds below TRAIN_SEED were never used for training; 123_457 is used nowhere else.
    # Issue 13's specification: at least 98 % accurate, and a softmax that is not saturated
    # (median top probability of the correct predictions at most 0.99)
    from xaikit.train import softmax_report

    test = make_shapes(1000, seed=123_457)
    report = softmax_report(shapes_model, test.images, test.labels)
    assert report["accuracy"] == accuracy(shapes_model, test.images, test.labels)
    assert report["accuracy"] >= 0.98
    assert report["top_softmax_median_correct"] <= 0.99


def test_softmax_report_by_hand():
    from xaikit.train import softmax_report

    class Fixed(nn.Module):  # logits that ignore the image: row i is logits[i]
        def forward(self, x):
            return self.logits[: len(x)]

    net = Fixed()
    net.logits = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [0, 0, 1.0], [7.0, 0, 0]])
    images = torch.full((4, 3, 8, 8), 0.5)
    report = softmax_report(net, images, torch.tensor([0, 1, 0, 0]))
    assert report["accuracy"] == 0.75
    # the correct rows' top probabilities: 0.79, 0.91, 0.998
    expected = torch.tensor([[2.0, 0, 0], [0, 3.0, 0], [7.0, 0, 0]]).softmax(1).max(1).values
    assert report["top_softmax_median_correct"] == pytest.approx(expected.median().item())
    assert report["top_softmax_share_above_0.99"] == pytest.approx(1 / 3)


def test_unfolded_model_computes_the_same_function(shapes_model):
    bn = xk.load_model("vgg16-shapes-bn")
    assert xk.model_spec(bn).name == "vgg16-shapes-bn"
    assert sum(isinstance(m, nn.BatchNorm2d) for m in bn.modules()) == 13
    x = xk.preprocess(make_shapes(4, seed=123_457).images, shapes_model)
    assert torch.allclose(bn(x), shapes_model(x), atol=1e-4, rtol=1e-4)
    folded = fuse_batchnorm(bn)
    for name, value in folded.state_dict().items():
        assert torch.allclose(value, shapes_model.state_dict()[name], atol=1e-6), name


def test_preprocess_matches_training_normalisation(shapes_model):
    from xaikit.train import normalize

    test = make_shapes(4, seed=5)
    assert torch.allclose(xk.preprocess(test.images, shapes_model), normalize(test.images))


def test_shipped_report_matches_weights():
    report = json.loads((models.data_dir() / "vgg16-shapes.json").read_text())
    assert report["sha256"] == models.SHAPES_SHA256
    assert report["sha256"] == models.sha256(models.data_dir() / models.SHAPES_WEIGHTS)
    assert report["test_accuracy"] >= 0.98 and report["bytes"] < 5 * 2**20
    assert report["test_top_softmax_median_correct"] <= 0.99
    assert report["bn_sha256"] == models.SHIPPED["vgg16-shapes-bn"].sha256
    assert report["bn_sha256"] == models.sha256(models.data_dir() / report["bn_file"])
    assert report["input_size"] == 112 and report["threads"] == 1


def test_corrupted_weights_raise(tmp_path, monkeypatch):
    source = models.data_dir() / models.SHAPES_WEIGHTS
    broken = tmp_path / models.SHAPES_WEIGHTS
    shutil.copy(source, broken)
    data = bytearray(broken.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    monkeypatch.setenv("XAIKIT_DATA", str(tmp_path))
    with pytest.raises(xk.WeightsIntegrityError, match="corrupted"):
        xk.load_model("vgg16-shapes")


def test_missing_weights_raise(tmp_path, monkeypatch):
    monkeypatch.setenv("XAIKIT_DATA", str(tmp_path))
    with pytest.raises(xk.WeightsIntegrityError, match="missing"):
        xk.load_model("vgg16-shapes")


@pytest.mark.parametrize("name", ["vgg17", "", "VGG16", 16])
def test_unknown_model_name(name):
    with pytest.raises(ValueError, match="unknown model"):
        xk.load_model(name)


@pytest.fixture()
def empty_hub(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    return tmp_path


def test_vgg16_offline_fails_fast_with_clear_message(empty_hub, monkeypatch):
    # The network is blocked by conftest's fixture (name resolution fails, as offline).
    monkeypatch.delenv("XAIKIT_OFFLINE", raising=False)
    start = time.perf_counter()
    with pytest.raises(xk.ModelUnavailableError) as info:
        xk.load_model("vgg16")
    assert time.perf_counter() - start < 5  # generous: it is a failed name lookup
    message = str(info.value)
    assert str(empty_hub / "checkpoints" / "vgg16-397923af.pth") in message
    assert "vgg16-shapes" in message


def test_vgg16_offline_env_skips_the_download(empty_hub, monkeypatch):
    def no_download(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setenv("XAIKIT_OFFLINE", "1")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(xk.ModelUnavailableError, match="no download was tried"):
        xk.load_model("vgg16")


def test_auto_falls_back_to_shapes_and_says_so(empty_hub, monkeypatch, capsys):
    monkeypatch.setenv("XAIKIT_OFFLINE", "1")
    model = xk.load_model("auto")
    assert xk.model_spec(model).name == "vgg16-shapes"
    assert "using vgg16-shapes" in capsys.readouterr().err
    monkeypatch.setenv("XAIKIT_MODEL", "vgg16-shapes")
    assert xk.model_spec(xk.load_model()).name == "vgg16-shapes"


@pytest.mark.slow
def test_vgg16_and_auto_use_cached_imagenet_weights(empty_hub, monkeypatch, capsys):
    # A cached checkpoint (here random weights under the real file name) is used without any
    # network access: the same path an online user takes after the first download.
    from torchvision.models import vgg16

    fake = xk.load_model("vgg16-untrained")
    assert xk.model_spec(fake).name == "vgg16-untrained" and len(xk.class_names(fake)) == 1000
    (empty_hub / "checkpoints").mkdir()
    torch.save(fake.state_dict(), empty_hub / "checkpoints" / "vgg16-397923af.pth")
    monkeypatch.setenv("XAIKIT_OFFLINE", "1")
    model = xk.load_model("auto")
    assert xk.model_spec(model).name == "vgg16" and "using vgg16 " in capsys.readouterr().err
    assert xk.class_names(model)[281] == "tabby"
    assert torch.equal(model.features[0].weight, fake.features[0].weight)
    assert type(model) is type(vgg16(weights=None)) and not model.training


def test_fuse_batchnorm_preserves_outputs():
    torch.manual_seed(0)
    bn = models.shapes_architecture(batch_norm=True).double()
    for m in bn.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    bn.eval()
    fused = fuse_batchnorm(bn)
    x = torch.randn(3, 3, 112, 112, dtype=torch.float64)
    assert torch.allclose(fused(x), bn(x), rtol=1e-10, atol=1e-10)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fused.modules())


def test_training_is_reproducible():
    a = train_shapes(epochs=1, per_epoch=128, batch_size=64, progress=False)
    b = train_shapes(epochs=1, per_epoch=128, batch_size=64, progress=False)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name


def test_input_size_of_the_imagenet_path(monkeypatch):
    monkeypatch.delenv("XAIKIT_INPUT_SIZE", raising=False)
    small = xk.load_model("vgg16-untrained", input_size=64)
    spec = xk.model_spec(small)
    assert (spec.input_size, spec.resize_size) == (64, 73)     # torchvision's 256/224 ratio
    x = xk.preprocess(xk.load_image("chelsea"), small)
    assert x.shape == (1, 3, 64, 64) and small(x).shape == (1, 1000)
    monkeypatch.setenv("XAIKIT_INPUT_SIZE", "96")
    assert xk.model_spec(xk.load_model("vgg16-untrained")).input_size == 96
    monkeypatch.setenv("XAIKIT_INPUT_SIZE", "big")
    with pytest.raises(ValueError, match="environment variable XAIKIT_INPUT_SIZE must be a whole"):
        xk.load_model("vgg16-untrained")
    monkeypatch.setenv("XAIKIT_INPUT_SIZE", "16")
    with pytest.raises(ValueError, match="at least 32 pixels"):
        xk.load_model("vgg16-untrained")
    monkeypatch.setenv("XAIKIT_INPUT_SIZE", "64")             # the shapes models ignore it
    assert xk.model_spec(xk.load_model("vgg16-shapes")).input_size == 112
    monkeypatch.delenv("XAIKIT_INPUT_SIZE")
    with pytest.raises(ValueError, match="trained on 112x112 inputs"):
        xk.load_model("vgg16-shapes", input_size=128)
