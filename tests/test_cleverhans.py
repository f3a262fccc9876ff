"""Clever Hans helpers (notebook 10): loader checks, box share, fine-tuning.

No Clever Hans weights are shipped yet (see ``xaikit.cleverhans.train_watermark_model``), so
the loader is tested on a copy of the clean ``vgg16-shapes`` weights with its own hash.
"""
import shutil

import pytest
import torch

import xaikit as xk
from xaikit import cleverhans, models
from xaikit.data import make_shapes, watermark_box

SEED = 123_458  # held out: below TRAIN_SEED and used nowhere else


@pytest.fixture()
def weights_copy(tmp_path):
    path = tmp_path / cleverhans.WATERMARK_WEIGHTS
    shutil.copy(models.data_dir() / models.SHAPES_WEIGHTS, path)
    return path


def test_loader_checks_hash_and_sets_spec(weights_copy, shapes_model):
    model = cleverhans.load_watermark_model(weights_copy,
                                            expected_sha256=models.sha256(weights_copy))
    assert xk.model_spec(model).name == "vgg16-shapes-watermark"
    assert xk.class_names(model) == xk.class_names(shapes_model)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    x = torch.rand(2, 3, 64, 64)
    assert torch.equal(model(x), shapes_model(x))


def test_loader_refuses_a_corrupted_file(weights_copy):
    digest = models.sha256(weights_copy)
    data = bytearray(weights_copy.read_bytes())
    data[len(data) // 3] ^= 0x01
    weights_copy.write_bytes(bytes(data))
    with pytest.raises(xk.WeightsIntegrityError, match="corrupted.*xaikit.cleverhans"):
        cleverhans.load_watermark_model(weights_copy, expected_sha256=digest)


def test_loader_refuses_missing_or_unknown_weights(tmp_path):
    with pytest.raises(xk.WeightsIntegrityError, match="missing"):
        cleverhans.load_watermark_model(tmp_path / "absent.safetensors", expected_sha256="0" * 64)
    if cleverhans.WATERMARK_SHA256 is None:
        with pytest.raises(xk.WeightsIntegrityError, match="no Clever Hans weights"):
            cleverhans.load_watermark_model()


def test_box_share_by_hand():
    attr = torch.zeros(2, 3, 64, 64)
    rows, cols = watermark_box(64)
    attr[0, 0, rows, cols] = 1.0          # 49 inside
    attr[0, 1, 0, :49] = 2.0              # 98 outside
    attr[0, 2, 5, 5] = -50.0              # negative evidence is not counted
    share = cleverhans.box_share(attr)
    assert share[0].item() == pytest.approx(49 / 147)
    assert share[1].item() == 0.0          # no positive evidence at all
    assert cleverhans.box_share(attr.sum(1))[0].item() == pytest.approx(49 / 147)
    assert cleverhans.box_share(attr, (slice(0, 1), slice(0, 64)))[0].item() == pytest.approx(98 / 147)
    with pytest.raises(ValueError, match="attr"):
        cleverhans.box_share(torch.zeros(64, 64))


def test_fine_tune_is_seeded_and_leaves_model_and_rng_alone(shapes_model, rng_state_guard):
    batch = make_shapes(64, SEED)
    before = {k: v.clone() for k, v in shapes_model.state_dict().items()}
    a = cleverhans.fine_tune(shapes_model, batch.images, batch.labels, seed=3)
    b = cleverhans.fine_tune(shapes_model, batch.images, batch.labels, seed=3)
    c = cleverhans.fine_tune(shapes_model, batch.images, batch.labels, seed=4)
    assert all(torch.equal(v, shapes_model.state_dict()[k]) for k, v in before.items())
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, c.state_dict()[k]) for k, v in a.state_dict().items())
    assert any(not torch.equal(v, before[k]) for k, v in a.state_dict().items())
    assert not a.training and not any(p.requires_grad for p in a.parameters())
    assert xk.model_spec(a) == xk.model_spec(shapes_model)


def test_fine_tune_freeze_keeps_the_first_layers(shapes_model):
    batch = make_shapes(64, SEED)
    tuned = cleverhans.fine_tune(shapes_model, batch.images, batch.labels, freeze=17, lr=1e-2)
    for name, value in tuned.state_dict().items():
        same = torch.equal(value, shapes_model.state_dict()[name])
        if name.startswith("features.") and int(name.split(".")[1]) < 17:
            assert same, name
        elif name.endswith("weight"):
            assert not same, name


def test_fine_tune_lowers_the_training_loss(shapes_model):
    # an honest check that the loop optimises: images of one class get that class's logit up
    batch = make_shapes(128, SEED + 1, classes=["star"])
    labels = torch.full_like(batch.labels, 0)  # relabel every star as a circle
    x = xk.preprocess(batch.images, shapes_model)
    loss = lambda m: torch.nn.functional.cross_entropy(m(x), labels).item()
    tuned = cleverhans.fine_tune(shapes_model, batch.images, labels, epochs=2, lr=1e-3)
    assert loss(tuned) < 0.5 * loss(shapes_model)


def test_fine_tune_bad_input(shapes_model):
    batch = make_shapes(8, SEED)
    with pytest.raises(ValueError, match="images"):
        cleverhans.fine_tune(shapes_model, batch.images[:, :1], batch.labels)
    with pytest.raises(ValueError, match="labels"):
        cleverhans.fine_tune(shapes_model, batch.images, batch.labels[:4])
    with pytest.raises(ValueError, match="full batch"):
        cleverhans.fine_tune(shapes_model, batch.images, batch.labels, batch_size=64)
