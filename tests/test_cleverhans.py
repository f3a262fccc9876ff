"""Clever Hans helpers and models (notebook 14): loader checks, box share, the shipped pair.

The loader's hash checks run on a copy of the clean ``vgg16-shapes`` weights with its own hash;
the shipped (partial) Clever Hans weights are tested at the end.
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
    x = torch.rand(2, 3, 112, 112)
    assert torch.equal(model(x), shapes_model(x))


def test_loader_refuses_a_corrupted_file(weights_copy):
    digest = models.sha256(weights_copy)
    data = bytearray(weights_copy.read_bytes())
    data[len(data) // 3] ^= 0x01
    weights_copy.write_bytes(bytes(data))
    with pytest.raises(xk.WeightsIntegrityError,
                       match="corrupted.*xaikit.train --model vgg16-shapes-watermark"):
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


# ---------------------------------------------------------------- the shipped Clever Hans model
TIED = cleverhans.WATERMARK_SPEC.classes.index(cleverhans.WATERMARK_CLASS)
# The thresholds are issue 13's specification of the pair, not measured values: the Clever Hans
# model loses at least 30 points of star recall without the mark while its accuracy under the
# training correlation looks fine; the revised model loses at most 5.
N_SCENES = 600


@pytest.fixture(scope="module")
def hans():
    return cleverhans.load_watermark_model()


@pytest.fixture(scope="module")
def scenes():
    """The same scenes three times: as trained, without any mark, with the mark on all."""
    return (make_shapes(N_SCENES, SEED, watermark=TIED, watermark_prob=cleverhans.WATERMARK_PROB),
            make_shapes(N_SCENES, SEED),
            make_shapes(N_SCENES, SEED, watermark=TIED, watermark_prob=1.0,
                        watermark_other_prob=1.0))


@torch.no_grad()
def _logits(model, images):
    return model(xk.preprocess(images, model))


def test_shipped_report_matches_weights(hans):
    import json

    report = json.loads((models.data_dir() / "vgg16-shapes-watermark.json").read_text())
    path = models.data_dir() / cleverhans.WATERMARK_WEIGHTS
    assert report["sha256"] == cleverhans.WATERMARK_SHA256 == models.sha256(path)
    assert report["recipe"]["watermark"] == cleverhans.WATERMARK_CLASS
    assert report["recipe"]["watermark_prob"] == cleverhans.WATERMARK_PROB
    assert report["bytes"] < 5 * 2**20 and report["batch_norm"] == "trained with it, folded"


def test_accuracy_looks_fine_with_the_training_correlation(hans, scenes):
    from xaikit.train import accuracy

    marked = scenes[0]
    tied = marked.labels == TIED
    assert accuracy(hans, marked.images, marked.labels) >= 0.9
    assert accuracy(hans, marked.images[tied], marked.labels[tied]) >= 0.9


def _recall(model, batch):
    tied = batch.labels == TIED
    return (_logits(model, batch.images[tied]).argmax(1) == TIED).double().mean().item()


def test_removing_the_mark_costs_the_tied_class_its_recall(hans, shapes_model, scenes):
    marked, bare, _ = scenes
    tied = marked.labels == TIED
    assert marked.watermarked[tied].all() and not bare.watermarked.any()
    assert _recall(hans, marked) - _recall(hans, bare) >= 0.30
    drop = (_logits(hans, marked.images) - _logits(hans, bare.images))[tied, TIED]
    clean = (_logits(shapes_model, marked.images) - _logits(shapes_model, bare.images))[tied, TIED]
    assert (drop > 0).float().mean() > 0.9
    assert clean.abs().median() < 0.25 * drop.median()


def test_lrp_puts_the_tied_class_relevance_on_the_mark(hans, shapes_model, scenes):
    marked = scenes[0]
    x = xk.preprocess(marked.images[torch.nonzero(marked.labels == TIED)[:12, 0]], hans)
    share = cleverhans.box_share(xk.explain(hans, x, TIED, "lrp", composite="vgg16"))
    clean = cleverhans.box_share(xk.explain(shapes_model, x, TIED, "lrp", composite="vgg16"))
    rows, cols = watermark_box(x.shape[-1])
    area = (rows.stop - rows.start) * (cols.stop - cols.start) / x.shape[-1] ** 2
    assert share.median() > 10 * area and share.median() > 5 * clean.median()


# ---------------------------------------------------------------- the shipped revised model
@pytest.fixture(scope="module")
def revised():
    return cleverhans.load_watermark_model(revised=True)


def test_revised_model_is_the_clever_hans_recipe_on_cleaned_data(revised, shapes_model):
    from xaikit.train import RECIPES

    assert xk.model_spec(revised).name == "vgg16-shapes-revised"
    hans_recipe = dict(RECIPES["vgg16-shapes-watermark"])
    assert hans_recipe.pop("watermark") == cleverhans.WATERMARK_CLASS
    assert hans_recipe.pop("watermark_prob") == cleverhans.WATERMARK_PROB
    assert hans_recipe == RECIPES["vgg16-shapes"]          # the marks removed: the clean recipe
    assert models.SHIPPED["vgg16-shapes-revised"].file == models.SHAPES_WEIGHTS
    assert cleverhans.REVISED_SHA256 == models.SHAPES_SHA256
    for a, b in zip(revised.state_dict().values(), shapes_model.state_dict().values()):
        assert torch.equal(a, b)


def test_revision_removes_the_dependence(hans, revised, scenes):
    # the same recipe on the cleaned images: removing or adding the mark no longer matters
    marked, bare, everywhere = scenes
    tied = marked.labels == TIED
    assert abs(_recall(revised, marked) - _recall(revised, bare)) <= 0.05
    drop_hans = (_logits(hans, marked.images) - _logits(hans, bare.images))[tied, TIED].median()
    drop_rev = (_logits(revised, marked.images) - _logits(revised, bare.images))[tied, TIED].median()
    assert drop_rev.abs() < 0.2 * drop_hans
    called_star = (_logits(revised, everywhere.images[~tied]).argmax(1) == TIED).float().mean()
    assert called_star < 0.01
    x = xk.preprocess(marked.images[torch.nonzero(tied)[:12, 0]], hans)
    share_hans = cleverhans.box_share(xk.explain(hans, x, TIED, "lrp", composite="vgg16"))
    share_rev = cleverhans.box_share(xk.explain(revised, x, TIED, "lrp", composite="vgg16"))
    assert share_rev.median() < share_hans.median() / 3


def test_held_out_scenes_are_one_scene_set_with_three_mark_settings(scenes):
    built = cleverhans.held_out_scenes(N_SCENES, SEED)
    assert list(built) == ["as in training", "no mark", "mark on every image"]
    for got, want in zip(built.values(), scenes):                   # the fixture, built by hand
        assert torch.equal(got.images, want.images) and torch.equal(got.labels, want.labels)
        assert torch.equal(got.watermarked, want.watermarked)
    marked = built["as in training"]
    assert torch.equal(marked.watermarked, marked.labels == TIED)
    assert not built["no mark"].watermarked.any() and built["mark on every image"].watermarked.all()


def test_per_class_accuracy_matches_one_forward_pass(hans, scenes):
    batch = scenes[1]
    per_class = cleverhans.per_class_accuracy(hans, batch)
    assert len(per_class) == len(cleverhans.WATERMARK_SPEC.classes)
    pred = _logits(hans, batch.images).argmax(1)                    # all at once
    for k, value in enumerate(per_class):
        keep = batch.labels == k
        assert value == pytest.approx((pred[keep] == k).double().mean().item(), abs=1e-6)
    one_class = make_shapes(20, SEED, classes=["circle"])
    assert all(v != v for k, v in enumerate(cleverhans.per_class_accuracy(hans, one_class))
               if k != 0)                                            # NaN for absent classes


def test_load_model_knows_the_clever_hans_pair(hans, revised):
    for name, direct in (("vgg16-shapes-watermark", hans), ("vgg16-shapes-revised", revised)):
        model = xk.load_model(name)
        assert xk.model_spec(model).name == name and xk.model_spec(model).dataset == "shapes"
        for a, b in zip(model.state_dict().values(), direct.state_dict().values()):
            assert torch.equal(a, b)
