"""Photos from installed packages and preprocessing for both models."""
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import xaikit as xk
from xaikit.models import SHAPES_SPEC, _imagenet_spec


@pytest.fixture(scope="module")
def imagenet_like():
    """A stand-in module carrying the ImageNet spec (no 528 MB VGG needed)."""
    module = nn.Conv2d(3, 1, 1)
    module.xaikit_spec = _imagenet_spec("vgg16")
    return module


@pytest.fixture(scope="module")
def shapes_like():
    module = nn.Conv2d(3, 1, 1)
    module.xaikit_spec = SHAPES_SPEC
    return module


@pytest.mark.parametrize("name", xk.IMAGE_NAMES)
def test_every_named_image_loads(name):
    image = xk.load_image(name)
    assert isinstance(image, Image.Image) and min(image.size) >= 64


def test_unknown_image_name():
    with pytest.raises(ValueError, match="unknown image 'dog'.*chelsea"):
        xk.load_image("dog")
    with pytest.raises(TypeError):
        xk.load_image(3)


def test_imagenet_preprocessing_is_torchvisions(imagenet_like):
    from torchvision.models import VGG16_Weights

    image = xk.load_image("chelsea")
    x = xk.preprocess(image, imagenet_like)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    reference = VGG16_Weights.IMAGENET1K_V1.transforms()(image)[None]
    assert (x - reference).abs().max() < 0.05  # same recipe; tensor vs PIL resampling differ
    assert torch.corrcoef(torch.stack([x.flatten(), reference.flatten()]))[0, 1] > 0.999


def test_shapes_preprocessing_and_denormalize(shapes_like):
    images = xk.data.make_shapes(3, seed=0).images
    x = xk.preprocess(images, shapes_like)
    assert x.shape == (3, 3, 112, 112)
    assert torch.allclose(xk.denormalize(x, shapes_like), images, atol=1e-6)
    photo = xk.preprocess(xk.load_image("coffee"), shapes_like)
    assert photo.shape == (1, 3, 112, 112)


def test_imagenet_class_names_offline(imagenet_like):
    names = xk.class_names(imagenet_like)
    assert len(names) == 1000 and names[281] == "tabby" and names[967] == "espresso"


@pytest.mark.parametrize("mode", ["L", "RGBA", "I;16", "P", "LA", "CMYK", "1"])
def test_pil_modes_are_converted(mode, shapes_like):
    rgb = xk.load_image("chelsea").resize((96, 64))
    if mode == "I;16":
        grey = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        image = Image.fromarray(grey)
        assert image.mode == "I;16"
    else:
        image = rgb.convert(mode)
    x = xk.preprocess(image, shapes_like)
    assert x.shape == (1, 3, 112, 112) and torch.isfinite(x).all()
    if mode in ("L", "I;16", "LA"):
        expected = xk.preprocess(rgb.convert("L"), shapes_like)
        assert torch.allclose(x, expected, atol=1e-4)
        pixels = xk.denormalize(x, shapes_like)
        assert torch.allclose(pixels[:, 0], pixels[:, 1], atol=1e-5)  # grey in all channels


def test_transparent_pixels_become_white(shapes_like):
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[:32, :, 3] = 255  # top half opaque red, bottom half transparent
    x = xk.denormalize(xk.preprocess(Image.fromarray(rgba, "RGBA"), shapes_like), shapes_like)
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, 0, 0]), atol=1e-3)
    assert torch.allclose(x[0, :, 63, 0], torch.ones(3), atol=1e-3)


@pytest.mark.parametrize("array", [
    np.full((64, 64, 3), 128, np.uint8), np.full((64, 64), 40000, np.uint16),
    np.full((64, 64, 1), 0.5, np.float32),
])
def test_numpy_arrays(array, shapes_like):
    x = xk.denormalize(xk.preprocess(array, shapes_like), shapes_like)
    expected = {np.dtype(np.uint8): 128 / 255, np.dtype(np.uint16): 40000 / 65535}.get(
        array.dtype, 0.5)
    assert torch.allclose(x, torch.full_like(x, expected), atol=1e-5)


@pytest.mark.parametrize("bad, error, match", [
    (torch.zeros(1, 3, 64, 64, dtype=torch.uint8), TypeError, "float"),
    (torch.zeros(1, 4, 64, 64), ValueError, r"\(N, 3, H, W\)"),
    (torch.zeros(64, 64), ValueError, r"\(N, 3, H, W\)"),
    (torch.full((1, 3, 64, 64), 2.0), ValueError, r"\[0, 1\]"),
    (torch.full((1, 3, 64, 64), float("nan")), ValueError, "NaN"),
    ("chelsea", TypeError, "PIL image"),
    (np.zeros((4, 4, 2), np.uint8), ValueError, r"\(H, W\)"),
    (np.zeros((4, 4), np.int32), TypeError, "uint8"),
])
def test_bad_images(bad, error, match, shapes_like):
    with pytest.raises(error, match=match):
        xk.preprocess(bad, shapes_like)


def test_model_without_spec():
    with pytest.raises(TypeError, match="ModelSpec"):
        xk.preprocess(xk.load_image("coffee"), nn.Conv2d(3, 1, 1))


def test_example_batch_shapes_path(shapes_model):
    ex = xk.example_batch(shapes_model, n=5, seed=2)
    batch = xk.data.make_shapes(5, seed=2)
    assert torch.equal(ex.images, batch.images) and torch.equal(ex.labels, batch.labels)
    assert torch.equal(ex.masks, batch.masks) and len(ex.names) == 5
    assert torch.allclose(ex.x, xk.preprocess(batch.images, shapes_model))


def test_example_batch_photo_path(imagenet_like):
    imagenet_like.weight.requires_grad_(False)
    ex = xk.example_batch(imagenet_like, n=3)
    assert ex.x.shape == (3, 3, 224, 224) and ex.masks is None
    assert [xk.class_names(imagenet_like)[k] for k in ex.labels] == [
        "tabby", "espresso", "military uniform"]
    with pytest.raises(ValueError, match="example photos"):
        xk.example_batch(imagenet_like, n=9)
