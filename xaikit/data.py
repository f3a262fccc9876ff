"""The procedurally generated *shapes* data set of the offline model ``vgg16-shapes``.

Each image shows one large object whose **shape** decides the class (circle, square, ...),
drawn at a random scale, position and rotation, together with up to three smaller *distractor*
objects of other classes. Backgrounds are crops of the real photos that ship inside
scikit-image and matplotlib (70 %) or procedural gratings (30 %), with jittered colour and
contrast; object surfaces are flat colours or carry the luminance texture of a photo crop or of
gratings; in 30 % of the images a small object of another class partly hides the main one;
an uneven illumination (a gain times a linear ramp) and pixel noise finish the scene. Colour
and texture carry no class information, so a model has to look at the outline of the large
object. Every sample comes with the mask of the visible pixels of its class-determining object,
a ground truth for localisation metrics (notebook 13), and an optional *watermark*, a small fixed
mark in a corner tied to one class, turns the set into a Clever Hans data set (notebook 14).

The generator is written by hand because no installed library draws labelled, masked,
randomly placed shapes on textured backgrounds; it uses NumPy (and scikit-image once, to shrink
the photos) and is deterministic: sample ``i`` of ``make_shapes(n, seed)`` depends only on
``(seed, i)``, so ``make_shapes(10, seed)`` is the first ten images of ``make_shapes(1000, seed)``.

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch

from ._checks import check_seed

__all__ = [
    "SHAPES_CLASSES",
    "SHAPES_SIZE",
    "TRAIN_SEED",
    "TEST_SEED",
    "ShapesBatch",
    "make_pair",
    "make_shapes",
    "watermark_box",
]

SHAPES_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "cross", "star", "heart")
"""Class names of the shapes data set, in label order."""

SHAPES_SIZE = 112
"""Default image side in pixels (the input size of ``vgg16-shapes``)."""

TRAIN_SEED = 1_000_000
"""Seeds ``TRAIN_SEED + k`` are the ones ``xaikit.train`` draws training images from."""

TEST_SEED = 0
"""The seed of the held-out test images (never used for training)."""

_SUPERSAMPLE = 2  # render at 2x and average: anti-aliased edges, masks from coverage > 0.5
_MAX_DISTRACTORS = 3
_OCCLUSION_PROB = 0.3  # share of images whose main object is partly hidden by another


@dataclass
class ShapesBatch:
    """A batch of shapes images.

    Attributes
    ----------
    images : torch.Tensor
        ``(N, 3, H, W)`` float32 in ``[0, 1]``.
    labels : torch.Tensor
        ``(N,)`` int64, indices into :data:`SHAPES_CLASSES`.
    masks : torch.Tensor
        ``(N, H, W)`` bool, the pixels of the class-determining object.
    watermarked : torch.Tensor
        ``(N,)`` bool, which images carry the watermark (all ``False`` without one).

    Unpacks like a tuple of the first three: ``images, labels, masks = make_shapes(8)``.
    """

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    watermarked: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor]:
        return iter((self.images, self.labels, self.masks))

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index) -> "ShapesBatch":
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return ShapesBatch(self.images[index], self.labels[index], self.masks[index],
                           self.watermarked[index])


# --------------------------------------------------------------------------- shape geometry
def _polygon(u: np.ndarray, v: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Even-odd point-in-polygon test for points ``(u, v)`` and ``(K, 2)`` vertices."""
    inside = np.zeros(u.shape, dtype=bool)
    x0, y0 = vertices[-1]
    for x1, y1 in vertices:
        crosses = (y1 > v) != (y0 > v)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x1 + (v - y1) * (x0 - x1) / (y0 - y1)
        inside ^= crosses & (u < x_at)
        x0, y0 = x1, y1
    return inside


def _regular(k: int, radius: float, phase: float = np.pi / 2) -> np.ndarray:
    angles = phase + 2 * np.pi * np.arange(k) / k
    return radius * np.stack([np.cos(angles), np.sin(angles)], 1)


def _star_vertices(points: int = 5, outer: float = 1.0, inner: float = 0.42) -> np.ndarray:
    angles = np.pi / 2 + np.pi * np.arange(2 * points) / points
    radii = np.where(np.arange(2 * points) % 2 == 0, outer, inner)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], 1)


_TRIANGLE = _regular(3, 1.08)
_SQUARE = _regular(4, 0.74 * np.sqrt(2), np.pi / 4)
_STAR = _star_vertices()


def _inside(label: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Is the point ``(u, v)`` (object frame, object radius about 1, v up) inside the shape?"""
    name = SHAPES_CLASSES[label]
    if name == "circle":
        return u * u + v * v <= 0.86 ** 2
    if name == "square":
        return _polygon(u, v, _SQUARE)
    if name == "triangle":
        return _polygon(u, v, _TRIANGLE + np.array([0.0, -0.12]))
    if name == "cross":
        arm, length = 0.3, 0.95
        return ((np.abs(u) <= arm) & (np.abs(v) <= length)) | (
            (np.abs(v) <= arm) & (np.abs(u) <= length))
    if name == "star":
        return _polygon(u, v, _STAR * 1.05)
    if name == "heart":
        x, y = 1.2 * u, 1.2 * v - 0.15
        return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0
    raise AssertionError(name)


def _coverage(label: int, size: int, cx: float, cy: float, radius: float, angle: float):
    """Anti-aliased coverage ``(size, size)`` in [0, 1] of one shape, rendered in its bounding box."""
    cover = np.zeros((size, size), dtype=np.float32)
    half = radius * 1.25 + 1
    r0, r1 = max(int(cy - half), 0), min(int(np.ceil(cy + half)) + 1, size)
    c0, c1 = max(int(cx - half), 0), min(int(np.ceil(cx + half)) + 1, size)
    if r0 >= r1 or c0 >= c1:
        return cover
    s = _SUPERSAMPLE
    rows = r0 + (np.arange((r1 - r0) * s) + 0.5) / s
    cols = c0 + (np.arange((c1 - c0) * s) + 0.5) / s
    dx, dy = np.meshgrid(cols - cx, rows - cy)
    cos, sin = np.cos(angle), np.sin(angle)
    u = (cos * dx + sin * dy) / radius
    v = -(-sin * dx + cos * dy) / radius  # image rows grow downwards, v grows upwards
    hit = _inside(label, u, v).astype(np.float32)
    cover[r0:r1, c0:c1] = hit.reshape(r1 - r0, s, c1 - c0, s).mean(axis=(1, 3))
    return cover


# ----------------------------------------------------------------------------- appearance
_SKIMAGE_PHOTOS = ("astronaut", "brick", "camera", "chelsea", "coffee", "coins", "grass", "gravel",
                   "hubble_deep_field", "moon", "retina", "rocket")
_MATPLOTLIB_PHOTOS = ("grace_hopper.jpg",)
_PHOTO_SIDE = 192  # photos are shrunk once so that their shorter side has this many pixels


@functools.lru_cache(maxsize=1)
def _photos() -> tuple[np.ndarray, ...]:
    """The real photos that ship inside scikit-image and matplotlib, as ``(3, h, w)`` float32.

    Loaded once per process, from the installed packages (no network), grey ones repeated
    over three channels, each shrunk with anti-aliasing so that its shorter side is
    :data:`_PHOTO_SIDE` pixels.
    """
    import matplotlib.image
    import skimage.data
    from matplotlib import cbook
    from skimage.transform import resize

    raw = [getattr(skimage.data, name)() for name in _SKIMAGE_PHOTOS]
    raw += [matplotlib.image.imread(cbook.get_sample_data(name)) for name in _MATPLOTLIB_PHOTOS]
    photos = []
    for image in raw:
        image = np.asarray(image, dtype=np.float64)
        if image.max() > 1.0:
            image = image / 255.0
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        image = image[..., :3]
        scale = _PHOTO_SIDE / min(image.shape[:2])
        shape = (round(image.shape[0] * scale), round(image.shape[1] * scale), 3)
        image = resize(image, shape, order=1, anti_aliasing=True)
        photos.append(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
    return tuple(photos)


def _photo_crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random square crop ``(3, size, size)`` of a random photo: random scale (a quarter of
    the shorter side to all of it), quarter turn and mirror, resampled bilinearly."""
    photos = _photos()
    photo = photos[rng.integers(len(photos))]
    h, w = photo.shape[1:]
    side = rng.uniform(0.25, 1.0) * min(h, w)
    top, left = rng.uniform(0, h - side), rng.uniform(0, w - side)
    coords = (np.arange(size) + 0.5) * side / size - 0.5
    rows = np.clip(top + coords, 0, h - 1)
    cols = np.clip(left + coords, 0, w - 1)
    r0, c0 = np.floor(rows).astype(int), np.floor(cols).astype(int)
    r1, c1 = np.minimum(r0 + 1, h - 1), np.minimum(c0 + 1, w - 1)
    fr, fc = (rows - r0)[:, None].astype(np.float32), (cols - c0)[None, :].astype(np.float32)
    crop = (photo[:, r0][:, :, c0] * (1 - fr) * (1 - fc) + photo[:, r1][:, :, c0] * fr * (1 - fc)
            + photo[:, r0][:, :, c1] * (1 - fr) * fc + photo[:, r1][:, :, c1] * fr * fc)
    crop = np.rot90(crop, int(rng.integers(4)), axes=(1, 2))
    if rng.uniform() < 0.5:
        crop = crop[:, :, ::-1]
    return np.ascontiguousarray(crop)


def _grating(rng: np.random.Generator, size: int) -> np.ndarray:
    """A procedural texture ``(size, size)`` in about [-1, 1]: the sum of three random gratings."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    texture = np.zeros((size, size), dtype=np.float32)
    for _ in range(3):
        theta = rng.uniform(0, np.pi)
        freq = rng.uniform(2, 10)
        phase = rng.uniform(0, 2 * np.pi)
        texture += np.sin(2 * np.pi * freq * (np.cos(theta) * xx + np.sin(theta) * yy) + phase)
    return texture / 3


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Background ``(3, size, size)``: a crop of a real photo (with probability 0.7), its
    contrast and colours jittered, or a base colour with random gratings (0.3)."""
    if rng.uniform() < 0.7:
        crop = _photo_crop(rng, size)
        grey = crop.mean(axis=0, keepdims=True)
        saturation = rng.uniform(0.3, 1.2)
        crop = grey + saturation * (crop - grey)
        base = rng.uniform(0.2, 0.8, size=3)[:, None, None]
        contrast = rng.uniform(0.4, 1.0)
        return base + contrast * (crop - crop.mean(axis=(1, 2), keepdims=True))
    base = rng.uniform(0.15, 0.85, size=3)
    tint = rng.uniform(-1, 1, size=3)
    amplitude = rng.uniform(0.05, 0.15)
    return base[:, None, None] + amplitude * tint[:, None, None] * _grating(rng, size)[None]


def _object_fill(rng: np.random.Generator, size: int, against: np.ndarray) -> np.ndarray:
    """An object's surface ``(3, size, size)``: a colour at least 0.45 (Euclidean RGB) away from
    the background colour ``against``, flat (probability 0.3) or with the luminance texture of a
    photo crop (0.5) or of gratings (0.2) at a random amplitude."""
    colour = _object_colour(rng, against)[:, None, None]
    kind = rng.uniform()
    if kind < 0.3:
        return np.broadcast_to(colour, (3, size, size))
    if kind < 0.8:
        crop = _photo_crop(rng, size).mean(axis=0)
        texture = (crop - crop.mean()) / max(float(crop.std()), 1e-3) / 2
    else:
        texture = _grating(rng, size)
    return colour + rng.uniform(0.05, 0.15) * np.clip(texture, -2, 2)[None]


def _lighting(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth illumination field ``(size, size)``: a global gain in [0.7, 1.2] times a linear
    ramp of up to +-25 % across the image in a random direction."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    theta = rng.uniform(0, 2 * np.pi)
    ramp = 1 + rng.uniform(-0.5, 0.5) * (np.cos(theta) * xx + np.sin(theta) * yy)
    return rng.uniform(0.7, 1.2) * ramp


def _object_colour(rng: np.random.Generator, against: np.ndarray) -> np.ndarray:
    """A random colour at least 0.45 (Euclidean RGB) away from the background colour."""
    for _ in range(100):
        colour = rng.uniform(0, 1, size=3)
        if np.linalg.norm(colour - against) >= 0.45:
            return colour
    return 1.0 - np.round(against)  # unreachable in practice: the farthest corner


def watermark_box(size: int = SHAPES_SIZE) -> tuple[slice, slice]:
    """Rows and columns of the watermark: a square mark of side ``round(7 size / 64)`` pixels
    (12 at 112), ``round(2 size / 64)`` pixels (4 at 112) from the lower-right corner."""
    side, margin = max(round(7 * size / 64), 7), max(round(2 * size / 64), 1)
    return slice(size - margin - side, size - margin), slice(size - margin - side, size - margin)


def _stamp_watermark(image: np.ndarray) -> None:
    rows, cols = watermark_box(image.shape[-1])
    mark = np.zeros((7, 7), dtype=bool)  # a small "x" in a frame, like a copyright tag
    mark[[0, -1], :] = mark[:, [0, -1]] = True
    mark[np.arange(1, 6), np.arange(1, 6)] = mark[np.arange(1, 6), np.arange(5, 0, -1)] = True
    side = rows.stop - rows.start
    index = np.arange(side) * 7 // side  # nearest-neighbour enlargement of the 7x7 pattern
    mark = mark[index][:, index]
    patch = image[:, rows, cols]
    patch[:, mark] = 1.0
    patch[:, ~mark] = 0.0


def _sample(rng: np.random.Generator, size: int, label: int, watermark: bool):
    image = _background(rng, size)
    background_colour = image.mean(axis=(1, 2))
    radius = rng.uniform(0.2, 0.3) * size
    cx, cy = rng.uniform(1.2 * radius, size - 1.2 * radius, size=2)
    placed = [(cx, cy, radius)]
    others = [k for k in range(len(SHAPES_CLASSES)) if k != label]
    for _ in range(rng.integers(0, _MAX_DISTRACTORS + 1)):
        small = rng.uniform(0.07, 0.11) * size
        for _try in range(20):
            px, py = rng.uniform(small, size - small, size=2)
            if all(np.hypot(px - qx, py - qy) > 1.3 * (small + qr) for qx, qy, qr in placed):
                break
        else:
            continue
        placed.append((px, py, small))
        cover = _coverage(int(rng.choice(others)), size, px, py, small, rng.uniform(0, 2 * np.pi))
        image = image * (1 - cover) + _object_fill(rng, size, background_colour) * cover
    angle = rng.uniform(-np.pi / 4, np.pi / 4) if SHAPES_CLASSES[label] == "heart" \
        else rng.uniform(0, 2 * np.pi)
    cover = _coverage(label, size, cx, cy, radius, angle)
    image = image * (1 - cover) + _object_fill(rng, size, background_colour) * cover
    if rng.uniform() < _OCCLUSION_PROB:  # a small object of another class in front of the edge
        small = rng.uniform(0.08, 0.12) * size
        direction = rng.uniform(0, 2 * np.pi)
        distance = radius * rng.uniform(0.8, 1.1)
        occluder = _coverage(int(rng.choice(others)), size, cx + distance * np.cos(direction),
                             cy + distance * np.sin(direction), small, rng.uniform(0, 2 * np.pi))
        image = image * (1 - occluder) + _object_fill(rng, size, background_colour) * occluder
        cover = cover * (1 - occluder)
    image = image * _lighting(rng, size)[None]
    image = image + rng.normal(0, rng.uniform(0.02, 0.06), size=image.shape)
    image = np.clip(image, 0, 1).astype(np.float32)
    if watermark:
        _stamp_watermark(image)
    return image, cover > 0.5


def _class_index(value) -> int:
    if isinstance(value, str):
        if value not in SHAPES_CLASSES:
            raise ValueError(f"unknown shapes class {value!r}; choose from {SHAPES_CLASSES}")
        return SHAPES_CLASSES.index(value)
    if isinstance(value, (int, np.integer)) and 0 <= value < len(SHAPES_CLASSES):
        return int(value)
    raise ValueError(f"class must be a name or an index below {len(SHAPES_CLASSES)}, got {value!r}")


def make_shapes(
    n: int,
    seed: int = TEST_SEED,
    *,
    size: int = SHAPES_SIZE,
    classes: Sequence[int | str] | None = None,
    watermark: int | str | None = None,
    watermark_prob: float = 1.0,
    watermark_other_prob: float = 0.0,
) -> ShapesBatch:
    """Generate ``n`` shapes images, deterministically from ``seed``.

    Parameters
    ----------
    n : int
        Number of images.
    seed : int
        Seed; sample ``i`` depends only on ``(seed, i)``. Training uses seeds from
        :data:`TRAIN_SEED` on, the default :data:`TEST_SEED` is held out.
    size : int
        Image side in pixels (default :data:`SHAPES_SIZE` = 112, the input size of
        ``vgg16-shapes``). The scene is drawn at that resolution: other sizes give the same
        labels and a similar, not a resampled, image.
    classes : sequence of int or str, optional
        Restrict the labels to these classes (drawn uniformly); default all six.
    watermark : int or str, optional
        A class tied to a watermark (notebook 14): its images carry the mark with probability
        ``watermark_prob``, the others with ``watermark_other_prob``.

    Returns
    -------
    ShapesBatch
        ``images (N, 3, H, W)`` float32 in [0, 1], ``labels (N,)`` int64, ``masks (N, H, W)``
        bool and ``watermarked (N,)`` bool.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size must be an integer of at least 16 pixels, got {size!r}")
    check_seed(seed)
    allowed = list(range(len(SHAPES_CLASSES))) if classes is None else [
        _class_index(c) for c in classes]
    if not allowed:
        raise ValueError("classes must not be empty")
    mark_class = None if watermark is None else _class_index(watermark)
    for name, p in (("watermark_prob", watermark_prob),
                    ("watermark_other_prob", watermark_other_prob)):
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{name} must lie in [0, 1], got {p!r}")

    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, size, size), dtype=bool)
    labels = np.empty(n, dtype=np.int64)
    marked = np.zeros(n, dtype=bool)
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(n)):
        rng = np.random.default_rng(child)
        labels[i] = allowed[rng.integers(len(allowed))]
        draw = rng.uniform()  # drawn always: the same seed gives the same scene with or without mark
        if mark_class is not None:
            p = watermark_prob if labels[i] == mark_class else watermark_other_prob
            marked[i] = draw < p
        images[i], masks[i] = _sample(rng, size, int(labels[i]), bool(marked[i]))
    return ShapesBatch(torch.from_numpy(images), torch.from_numpy(labels),
                       torch.from_numpy(masks), torch.from_numpy(marked))


def make_pair(n: int, classes: tuple[int | str, int | str], seed: int = TEST_SEED, *,
              size: int = SHAPES_SIZE) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images with two objects side by side, of ``classes[0]`` (left) and ``classes[1]``.

    The "cat and dog" images of the class-discrimination experiment (notebook 10): both objects
    have the same size (radius 0.17-0.2 of the side, the small end of the training range), so
    neither is a distractor. Deterministic like :func:`make_shapes`.

    Returns
    -------
    images : torch.Tensor
        ``(n, 3, size, size)`` float32 in [0, 1].
    masks : torch.Tensor
        ``(n, 2, size, size)`` bool, the left and the right object.
    """
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if len(classes) != 2:
        raise ValueError(f"classes must name two classes, got {classes!r}")
    labels = [_class_index(c) for c in classes]
    images = np.empty((n, 3, size, size), dtype=np.float32)
    masks = np.empty((n, 2, size, size), dtype=bool)
    for i, child in enumerate(np.random.SeedSequence([seed, 2]).spawn(n)):
        rng = np.random.default_rng(child)
        image = _background(rng, size)
        background_colour = image.mean(axis=(1, 2))
        for k, (label, cx) in enumerate(zip(labels, (0.27, 0.73))):
            radius = rng.uniform(0.17, 0.2) * size
            cy = size / 2 + rng.uniform(-0.1, 0.1) * size
            angle = rng.uniform(-np.pi / 4, np.pi / 4) if SHAPES_CLASSES[label] == "heart" \
                else rng.uniform(0, 2 * np.pi)
            cover = _coverage(label, size, cx * size, cy, radius, angle)
            image = image * (1 - cover) + _object_fill(rng, size, background_colour) * cover
            masks[i, k] = cover > 0.5
        image = image * _lighting(rng, size)[None]
        image = image + rng.normal(0, rng.uniform(0.02, 0.06), size=image.shape)
        images[i] = np.clip(image, 0, 1)
    return torch.from_numpy(images), torch.from_numpy(masks)
