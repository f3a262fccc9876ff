"""Bad inputs at the edges of the package: images, specs, plots, metrics and environment."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import xaikit as xk
from xaikit import cleverhans
from xaikit.data import SHAPES_CLASSES, make_shapes, watermark_box
from xaikit.models import SHAPES_SPEC, _imagenet_spec


@pytest.fixture(scope="module")
def imagenet_like():
    """A stand-in module carrying the ImageNet spec (no 528 MB VGG needed)."""
    module = nn.Conv2d(3, 1, 1).requires_grad_(False)
    module.xaikit_spec = _imagenet_spec("vgg16")
    return module


@pytest.fixture(scope="module")
def shapes_like():
    module = nn.Conv2d(3, 1, 1).requires_grad_(False)
    module.xaikit_spec = SHAPES_SPEC
    return module


def _pixels(image, model):
    return xk.denormalize(xk.preprocess(image, model), model)


# ------------------------------------------------------------ 1. float arrays, modes F and I
@pytest.mark.parametrize("shape", [(64, 64), (64, 64, 3), (64, 64, 4)])
def test_float_array_outside_unit_range_is_refused(shape, shapes_like):
    array = np.full(shape, 200.0, np.float32)
    with pytest.raises(ValueError, match=r"float image array must lie in \[0, 1\].*got \[200, 200\]"
                                         r".*divide .*by 255"):
        xk.preprocess(array, shapes_like)
    with pytest.raises(ValueError, match=r"\[0, 1\].*got \[-0\.5"):
        xk.preprocess(np.full(shape, -0.5, np.float64), shapes_like)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_float_array_with_nan_or_inf_is_refused(bad, shapes_like):
    array = np.full((64, 64, 3), 0.5, np.float32)
    array[3, 4, 1] = bad
    with pytest.raises(ValueError, match="NaN or infinite.*numpy.nan_to_num"):
        xk.preprocess(array, shapes_like)


def test_mode_f_image_is_checked_like_a_float_array(shapes_like):
    with pytest.raises(ValueError, match=r"mode 'F'.*\[0, 1\].*got \[0, 255\].*divide .*by 255"):
        xk.preprocess(Image.fromarray(np.linspace(0, 255, 64 * 64, dtype=np.float32)
                                      .reshape(64, 64), "F"), shapes_like)
    nan = np.full((64, 64), 0.5, np.float32)
    nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        xk.preprocess(Image.fromarray(nan, "F"), shapes_like)
    ok = Image.fromarray(np.full((64, 64), 0.25, np.float32), "F")
    assert torch.allclose(_pixels(ok, shapes_like), torch.full((1, 3, 112, 112), 0.25), atol=1e-5)


def test_float_tensor_message_says_how_to_fix(shapes_like):
    with pytest.raises(ValueError, match=r"\[0, 1\].*divide .*by 255"):
        xk.preprocess(torch.full((1, 3, 64, 64), 255.0), shapes_like)


def test_mode_i_is_16_bit_whatever_its_values(shapes_like):
    # mode "I" holds 16-bit data (old Pillow's 16-bit PNG, I;16 converted); values <= 255 do
    # not make it 8-bit: it is scaled by 65535 like I;16, never guessed from the data
    for value in (128, 40000):
        data = np.full((64, 64), value, np.int32)
        image_i = Image.fromarray(data)
        assert image_i.mode == "I"
        image_16 = Image.fromarray(data.astype(np.uint16))
        assert image_16.mode == "I;16"
        got = _pixels(image_i, shapes_like)
        assert torch.allclose(got, torch.full_like(got, value / 65535), atol=1e-6)
        assert torch.allclose(got, _pixels(image_16, shapes_like), atol=1e-6)


@pytest.mark.parametrize("value", [-1, 70000])
def test_mode_i_outside_16_bit_range_is_refused(value, shapes_like):
    data = np.full((64, 64), 1000, np.int32)
    data[0, 0] = value
    with pytest.raises(ValueError, match=r"mode 'I'.*16-bit.*\[0, 65535\].*float array"):
        xk.preprocess(Image.fromarray(data), shapes_like)


# ------------------------------------------------------------------- 2. denormalize channels
@pytest.mark.parametrize("shape", [(1, 1, 64, 64), (1, 4, 64, 64), (2, 64, 64)])
def test_denormalize_refuses_a_channel_mismatch(shape, shapes_like):
    with pytest.raises(ValueError, match=r"x must be \(N, 3, H, W\).*got \("):
        xk.denormalize(torch.zeros(shape), shapes_like)


def test_denormalize_refuses_integer_tensors(shapes_like):
    with pytest.raises(TypeError, match="float"):
        xk.denormalize(torch.zeros(1, 3, 4, 4, dtype=torch.int64), shapes_like)


# --------------------------------------------------------------------- 3. empty, too small
@pytest.mark.parametrize("image", [
    Image.new("RGB", (0, 0)), Image.new("L", (0, 5)), np.zeros((0, 0, 3), np.uint8),
    np.zeros((5, 0), np.float32), torch.zeros(3, 0, 0), torch.zeros(0, 3, 64, 64),
])
def test_empty_images_are_refused(image, shapes_like):
    with pytest.raises(ValueError, match="empty"):
        xk.preprocess(image, shapes_like)


@pytest.mark.parametrize("image", [
    Image.new("RGB", (8, 8)), np.zeros((31, 100, 3), np.uint8), torch.zeros(1, 3, 64, 16),
])
def test_images_smaller_than_the_network_are_refused(image, shapes_model):
    with pytest.raises(ValueError, match=r"at least 32x32 pixels.*5 max-pool"):
        xk.preprocess(image, shapes_model)


def test_minimum_size_comes_from_the_model(shapes_model):
    assert xk.preprocess(np.zeros((32, 40, 3), np.uint8), shapes_model).shape == (1, 3, 112, 112)
    three_pools = nn.Sequential(nn.Conv2d(3, 3, 1), *(nn.MaxPool2d(2) for _ in range(3)))
    three_pools.xaikit_spec = SHAPES_SPEC
    assert xk.preprocess(torch.zeros(1, 3, 8, 8), three_pools).shape == (1, 3, 112, 112)
    with pytest.raises(ValueError, match=r"at least 8x8"):
        xk.preprocess(torch.zeros(1, 3, 7, 8), three_pools)


# --------------------------------------------------------- 4. example_batch follows the spec
@pytest.mark.parametrize("revised", [False, True])
def test_example_batch_on_the_clever_hans_models_gives_shapes(revised):
    model = cleverhans.load_watermark_model(revised=revised)
    assert xk.model_spec(model).dataset == "shapes"
    ex = xk.example_batch(model, n=3, seed=1)
    batch = make_shapes(3, 1)
    assert torch.equal(ex.labels, batch.labels) and int(ex.labels.max()) < len(SHAPES_CLASSES)
    assert torch.equal(ex.images, batch.images) and ex.masks is not None
    assert ex.x.shape == (3, 3, 112, 112)


def test_spec_datasets():
    assert SHAPES_SPEC.dataset == "shapes" and _imagenet_spec("vgg16").dataset == "imagenet"
    assert cleverhans.WATERMARK_SPEC.dataset == cleverhans.REVISED_SPEC.dataset == "shapes"


def test_example_batch_refuses_a_spec_it_has_no_examples_for():
    import dataclasses

    module = nn.Conv2d(3, 1, 1).requires_grad_(False)
    module.xaikit_spec = dataclasses.replace(SHAPES_SPEC, name="mine", classes=("a", "b"))
    with pytest.raises(ValueError, match="2 classes.*shapes.*6"):
        xk.example_batch(module)
    module.xaikit_spec = dataclasses.replace(SHAPES_SPEC, name="mine", dataset="cifar10")
    with pytest.raises(ValueError, match="'cifar10'.*imagenet.*shapes"):
        xk.example_batch(module)


# ------------------------------------------------------------- 5. heatmap over another size
@pytest.mark.parametrize("image", [torch.rand(1, 3, 32, 32), torch.rand(3, 64, 48),
                                   Image.new("RGB", (64, 32))])
def test_plot_heatmap_refuses_an_image_of_another_size(image):
    before = plt.get_fignums()
    with pytest.raises(ValueError, match=r"image is .* but the heatmap is 64x64"):
        xk.plot_heatmap(torch.rand(1, 3, 64, 64), image=image)
    assert plt.get_fignums() == before  # no figure left behind


def test_plot_heatmap_accepts_matching_images():
    for image in (torch.rand(1, 3, 64, 48), Image.new("RGB", (48, 64)), torch.rand(64, 48)):
        fig, _ = xk.plot_heatmap(torch.rand(64, 48), image=image)
        plt.close(fig)


# ----------------------------------------------------------------------- 6. box_share of NaN
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_box_share_refuses_nan_like_the_metrics(bad):
    attr = torch.rand(2, 3, 64, 64)
    attr[1, 0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"attr contains NaN or infinite values"):
        cleverhans.box_share(attr)
    with pytest.raises(ValueError, match="NaN or infinite"):
        xk.evaluation.relevance_mass(attr, torch.ones(2, 64, 64, dtype=torch.bool))


def test_box_share_still_counts_positive_evidence():
    attr = torch.zeros(1, 64, 64)
    rows, cols = watermark_box(64)
    attr[0, rows, cols] = 1.0
    attr[0, 0, :49] = 1.0
    assert cleverhans.box_share(attr).tolist() == [0.5]


# ------------------------------------------------------------------------ 7. XAIKIT_MODEL
def test_bad_model_name_from_the_environment_says_so(monkeypatch):
    monkeypatch.setenv("XAIKIT_MODEL", "garbage")
    with pytest.raises(ValueError, match=r"'garbage'.*environment variable XAIKIT_MODEL"):
        xk.load_model()
    with pytest.raises(ValueError, match="unknown model 'garbage'") as caught:
        xk.load_model("garbage")
    assert "XAIKIT_MODEL" not in str(caught.value)


# -------------------------------------------------------------------------- 8. float seeds
@pytest.mark.parametrize("seed", [0.5, 1.0, True, "0"])
def test_example_batch_refuses_non_int_seeds(seed, shapes_model, imagenet_like):
    for model in (shapes_model, imagenet_like):
        with pytest.raises(TypeError, match=r"seed must be an int, got " + repr(seed)):
            xk.example_batch(model, n=1, seed=seed)


@pytest.mark.parametrize("n", [2.0, True])
def test_example_batch_refuses_non_int_n(n, shapes_model, imagenet_like):
    for model in (shapes_model, imagenet_like):
        with pytest.raises(TypeError, match=r"n must be an int, got " + repr(n)):
            xk.example_batch(model, n=n)


def test_example_batch_accepts_numpy_ints(shapes_model):
    ex = xk.example_batch(shapes_model, n=np.int64(2), seed=np.int32(4))
    assert torch.equal(ex.labels, make_shapes(2, 4).labels)


def test_plot_heatmap_refuses_an_image_of_odd_rank():
    with pytest.raises(ValueError, match="image must be"):
        xk.plot_heatmap(torch.rand(8, 8), image=torch.rand(8))
