"""The shapes data set: shapes, determinism, masks, distractors, photos, watermark, bad input."""
import numpy as np
import pytest
import torch

from xaikit.data import SHAPES_CLASSES, SHAPES_SIZE, ShapesBatch, make_shapes, watermark_box

S = SHAPES_SIZE


@pytest.fixture(scope="module")
def batch():
    return make_shapes(240, seed=7)


def test_fields_shapes_and_ranges(batch):
    images, labels, masks = batch  # unpacks like a 3-tuple
    assert isinstance(batch, ShapesBatch)
    assert S == 112
    assert images.shape == (240, 3, S, S) and images.dtype == torch.float32
    assert labels.shape == (240,) and labels.dtype == torch.int64
    assert masks.shape == (240, S, S) and masks.dtype == torch.bool
    assert images.min() >= 0 and images.max() <= 1
    assert set(labels.tolist()) == set(range(len(SHAPES_CLASSES)))
    assert len(SHAPES_CLASSES) >= 6 and not batch.watermarked.any()


def test_deterministic_and_prefix_stable(batch):
    again = make_shapes(240, seed=7)
    assert torch.equal(again.images, batch.images) and torch.equal(again.masks, batch.masks)
    prefix = make_shapes(10, seed=7)
    assert torch.equal(prefix.images, batch.images[:10])
    other = make_shapes(10, seed=8)
    assert not torch.equal(other.images, prefix.images)


def test_masks_cover_the_large_object(batch):
    area = batch.masks.flatten(1).float().mean(1)
    # main object radius 0.2-0.3 of the side: between ~5 % and ~30 % of the image, less the
    # part a small occluder may hide (at most about half of a disc of radius 0.12)
    assert area.min() > 0.02 and area.max() < 0.35
    # the object stands out from its surroundings: its mean colour differs from that of a
    # 3-pixel ring around the mask (the generator keeps it 0.45 from the background's mean)
    from scipy import ndimage

    contrast = []
    for img, m in zip(batch.images, batch.masks):
        ring = ndimage.binary_dilation(m.numpy(), iterations=3) & ~m.numpy()
        ring = torch.from_numpy(ring)
        contrast.append((img[:, m].mean(1) - img[:, ring].mean(1)).norm().item())
    assert np.mean(np.array(contrast) > 0.1) > 0.9


def test_sizes_and_size_parameter():
    small = make_shapes(3, seed=7, size=64)
    assert small.images.shape == (3, 3, 64, 64) and small.masks.shape == (3, 64, 64)
    assert torch.equal(small.labels, make_shapes(3, seed=7).labels)  # the same scenes


def test_backgrounds_and_textures_come_from_installed_photos():
    from xaikit.data import _photo_crop, _photos

    photos = _photos()
    assert len(photos) >= 10
    for photo in photos:
        assert photo.shape[0] == 3 and min(photo.shape[1:]) == 192
        assert photo.dtype == np.float32 and 0 <= photo.min() and photo.max() <= 1
    crop = _photo_crop(np.random.default_rng(0), 40)
    assert crop.shape == (3, 40, 40) and crop.std() > 0.01


def test_colour_is_not_informative(batch):
    colours = torch.stack([img[:, m].mean(1) for img, m in zip(batch.images, batch.masks)])
    overall = colours.mean(0)
    for k in range(len(SHAPES_CLASSES)):
        assert (colours[batch.labels == k].mean(0) - overall).abs().max() < 0.15


def test_distractors_are_present_and_smaller(batch):
    # Pixels that differ strongly from the local background outside the main object's mask
    # exist in most images (distractors); their area is far below the main object's.
    from scipy import ndimage

    counts = []
    for img, m in zip(batch.images[:60], batch.masks[:60]):
        smooth = torch.from_numpy(ndimage.median_filter(img.numpy(), size=(1, 3, 3)))
        background = torch.median(smooth[:, ~m], dim=1).values[:, None, None]
        blob = ((smooth - background).abs().max(0).values > 0.25) & ~m
        labelled, n = ndimage.label(blob.numpy())
        sizes = np.bincount(labelled.ravel())[1:]
        counts.append(((sizes > 15) & (sizes < m.sum().item() * 0.6)).sum())
    assert np.mean(np.array(counts) > 0) > 0.4


def test_class_restriction_and_names():
    b = make_shapes(30, seed=1, classes=["star", 0])
    assert set(b.labels.tolist()) <= {0, SHAPES_CLASSES.index("star")}


def test_watermark_tied_to_one_class():
    plain = make_shapes(120, seed=3)
    marked = make_shapes(120, seed=3, watermark="circle", watermark_prob=1.0)
    assert torch.equal(marked.watermarked, plain.labels == 0)
    rows, cols = watermark_box()
    assert rows.stop - rows.start == cols.stop - cols.start == 12 and rows.stop == S - 4
    box = torch.zeros(S, S, dtype=torch.bool)
    box[rows, cols] = True
    diff = (marked.images != plain.images).any(1)  # (N, H, W)
    assert not diff[:, ~box].any(), "the watermark must change nothing outside its box"
    assert diff[marked.watermarked][:, box].any(), "watermarked images must change in the box"
    assert torch.equal(marked.labels, plain.labels) and torch.equal(marked.masks, plain.masks)
    half = make_shapes(400, seed=4, watermark=0, watermark_prob=0.5, watermark_other_prob=0.1)
    share = half.watermarked[half.labels == 0].float().mean()
    other = half.watermarked[half.labels != 0].float().mean()
    assert 0.3 < share < 0.7 and 0.02 < other < 0.2


def test_slicing():
    b = make_shapes(5, seed=2)
    assert len(b[1:3]) == 2 and torch.equal(b[4].images, b.images[4:5])


@pytest.mark.parametrize("kwargs, error", [
    (dict(n=-1), ValueError), (dict(n=2.5), ValueError), (dict(n=2, size=8), ValueError),
    (dict(n=2, classes=[]), ValueError), (dict(n=2, classes=["hexagon"]), ValueError),
    (dict(n=2, classes=[6]), ValueError), (dict(n=2, watermark=0, watermark_prob=1.5), ValueError),
])
def test_bad_input(kwargs, error):
    with pytest.raises(error):
        make_shapes(**kwargs)


def test_make_pair_two_objects_side_by_side():
    from xaikit.data import make_pair

    images, masks = make_pair(6, ("circle", "star"), seed=1)
    assert images.shape == (6, 3, S, S) and masks.shape == (6, 2, S, S)
    assert not (masks[:, 0] & masks[:, 1]).any()
    columns = torch.arange(S).float()
    left = (masks[:, 0].float().sum(1) * columns).sum(1) / masks[:, 0].float().sum((1, 2))
    right = (masks[:, 1].float().sum(1) * columns).sum(1) / masks[:, 1].float().sum((1, 2))
    assert (left < 0.4 * S).all() and (right > 0.6 * S).all()
    again, _ = make_pair(6, ("circle", "star"), seed=1)
    assert torch.equal(again, images)
    with pytest.raises(ValueError):
        make_pair(2, ("circle",))
