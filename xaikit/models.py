"""Model loaders: torchvision's ImageNet VGG-16 and the embedded ``vgg16-shapes``.

Both models share torchvision's VGG-16 module layout (``features.0`` ... ``features.30`` with
13 ``Conv2d``, ``avgpool``, ``classifier.0`` ... ``classifier.6`` with 3 ``Linear``), so layer
names such as ``features.28`` (the last convolution; Grad-CAM's default is the ReLU after it,
``features.29``) mean the same thing on both. Every loaded model carries a :class:`ModelSpec`
(input size, normalisation, class names) that :func:`xaikit.preprocess` and the explainers read.

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import os
import socket
import sys
import urllib.error
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .data import SHAPES_CLASSES, SHAPES_SIZE

__all__ = [
    "MODEL_NAMES",
    "ModelSpec",
    "BN_SPEC",
    "REVISED_SPEC",
    "SHIPPED",
    "ShippedWeights",
    "WATERMARK_SPEC",
    "ModelUnavailableError",
    "WeightsIntegrityError",
    "class_names",
    "data_dir",
    "load_model",
    "model_spec",
    "resolve_device",
    "layer_table",
    "load_weights",
    "shapes_architecture",
]

MODEL_NAMES = ("vgg16", "vgg16-shapes", "auto", "vgg16-untrained", "vgg16-shapes-watermark",
               "vgg16-shapes-revised", "vgg16-shapes-bn")
"""Names :func:`load_model` accepts. ``vgg16-untrained`` is torchvision's architecture with
random weights, for testing the ImageNet code path offline; it never stands in for ``vgg16``.
``vgg16-shapes-watermark`` and ``vgg16-shapes-revised`` are the Clever Hans pair of notebook 14
(:mod:`xaikit.cleverhans`). ``vgg16-shapes-bn`` is ``vgg16-shapes`` before its BatchNorms were
folded into the convolutions (the ``vgg16_bn`` layout it was trained in; same outputs up to
rounding), for canonization (notebook 07)."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

SHAPES_WIDTHS = (12, 24, 48, 96, 96)
"""Channels of the five convolution blocks of ``vgg16-shapes`` (torchvision: 64 ... 512)."""
SHAPES_HIDDEN = 128
"""Width of the two hidden dense layers of ``vgg16-shapes`` (torchvision: 4096)."""
SHAPES_WEIGHTS = "vgg16-shapes.safetensors"
SHAPES_SHA256 = "3585d2bb2b0ddc223522456439b2f71e988366fc4cd0dde83fc47de85d219ffe"
"""SHA-256 of the shipped weights; ``python -m xaikit.train`` prints the value of a new file."""

OFFLINE_ENV = "XAIKIT_OFFLINE"
MODEL_ENV = "XAIKIT_MODEL"
DOWNLOAD_TIMEOUT_S = 10.0


class ModelUnavailableError(RuntimeError):
    """The requested model's weights are neither cached nor downloadable."""


class WeightsIntegrityError(RuntimeError):
    """A weights file is missing or does not match its recorded SHA-256."""


@dataclass(frozen=True)
class ModelSpec:
    """What preprocessing and explaining need to know about a model.

    Attributes
    ----------
    name : str
        ``"vgg16"``, ``"vgg16-shapes"`` or ``"vgg16-untrained"``.
    input_size : int
        Side of the square input the model was trained on (224 or 64).
    resize_size : int
        Shorter image side before the centre crop (256 for ImageNet, 64 for shapes).
    mean, std : tuple of float
        Per-channel normalisation applied after scaling pixels to [0, 1].
    classes : tuple of str
        Class names in logit order.
    dataset : str
        The data the model classifies, which decides its example inputs
        (:func:`xaikit.example_batch`): ``"imagenet"`` (the default; photos) or ``"shapes"``
        (:func:`xaikit.data.make_shapes`: ``vgg16-shapes`` and the Clever Hans models of
        :mod:`xaikit.cleverhans`). Decide by this field, not by ``name``.
    """

    name: str
    input_size: int
    resize_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    classes: tuple[str, ...]
    dataset: str = "imagenet"

    @property
    def trained(self) -> bool:
        """False for ``vgg16-untrained`` (random weights): notebooks skip asserts on accuracy."""
        return self.name != "vgg16-untrained"

    @property
    def low(self) -> torch.Tensor:
        """``(1, 3, 1, 1)`` smallest normalised pixel value (a black pixel), the z^B bound ``l``."""
        return ((0 - torch.tensor(self.mean)) / torch.tensor(self.std)).view(1, 3, 1, 1)

    @property
    def high(self) -> torch.Tensor:
        """``(1, 3, 1, 1)`` largest normalised pixel value (a white pixel), the z^B bound ``h``."""
        return ((1 - torch.tensor(self.mean)) / torch.tensor(self.std)).view(1, 3, 1, 1)


def data_dir() -> Path:
    """The project's ``data/`` folder (``$XAIKIT_DATA`` overrides it)."""
    override = os.environ.get("XAIKIT_DATA")
    return Path(override) if override else Path(__file__).resolve().parent.parent / "data"


def model_spec(model: nn.Module) -> ModelSpec:
    """The :class:`ModelSpec` of a model returned by :func:`load_model`."""
    spec = getattr(model, "xaikit_spec", None)
    if not isinstance(spec, ModelSpec):
        raise TypeError(
            f"{type(model).__name__} carries no xaikit ModelSpec; load it with xaikit.load_model "
            "or attach one: model.xaikit_spec = xaikit.ModelSpec(...)")
    return spec


def class_names(model: nn.Module) -> tuple[str, ...]:
    """Class names of a loaded model, in logit order (ImageNet's 1000 offline from torchvision)."""
    return model_spec(model).classes


def _imagenet_classes() -> tuple[str, ...]:
    from torchvision.models import VGG16_Weights

    return tuple(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


def _imagenet_spec(name: str, input_size: int = 224) -> ModelSpec:
    # torchvision's recipe: resize the shorter side to 256/224 of the input size, centre-crop
    return ModelSpec(name, input_size, round(input_size * 256 / 224), IMAGENET_MEAN, IMAGENET_STD,
                     _imagenet_classes())


INPUT_SIZE_ENV = "XAIKIT_INPUT_SIZE"


def _input_size(input_size: int | None) -> int | None:
    """The requested input side of an ImageNet-path model (argument, else ``$XAIKIT_INPUT_SIZE``)."""
    source = "input_size"
    if input_size is None and os.environ.get(INPUT_SIZE_ENV):
        text, source = os.environ[INPUT_SIZE_ENV], f"the environment variable {INPUT_SIZE_ENV}"
        try:
            input_size = int(text)
        except ValueError:
            raise ValueError(f"{source} must be a whole number of pixels, got {text!r}") from None
    if input_size is None:
        return None
    if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 32:
        raise ValueError(f"{source} must be an int of at least 32 pixels (VGG-16's five "
                         f"max-pools), got {input_size!r}")
    return input_size


SHAPES_SPEC = ModelSpec("vgg16-shapes", SHAPES_SIZE, SHAPES_SIZE, IMAGENET_MEAN, IMAGENET_STD,
                        SHAPES_CLASSES, dataset="shapes")
WATERMARK_SPEC = dataclasses.replace(SHAPES_SPEC, name="vgg16-shapes-watermark")
"""The Clever Hans model's spec: same input size, normalisation, classes and data set."""
REVISED_SPEC = dataclasses.replace(SHAPES_SPEC, name="vgg16-shapes-revised")
"""The revised model's spec (notebook 14, section 4). Its weights are ``vgg16-shapes``'s: the
Clever Hans recipe retrained on the cleaned images is ``vgg16-shapes``'s recipe."""
BN_SPEC = dataclasses.replace(SHAPES_SPEC, name="vgg16-shapes-bn")
"""The spec of ``vgg16-shapes`` with its BatchNorms not folded (notebook 07, canonization)."""


@dataclass(frozen=True)
class ShippedWeights:
    """A weights file of the ``vgg16-shapes`` layout shipped in ``data/``, with its hash."""

    file: str
    sha256: str | None
    spec: ModelSpec
    command: str
    """The command that retrains it (named in integrity errors)."""
    batch_norm: bool = False
    """Stored in the ``vgg16_bn`` layout (BatchNorm after every convolution)."""


SHIPPED: dict[str, ShippedWeights] = {
    "vgg16-shapes": ShippedWeights(SHAPES_WEIGHTS, SHAPES_SHA256, SHAPES_SPEC,
                                   "python -m xaikit.train"),
    "vgg16-shapes-watermark": ShippedWeights(
        "vgg16-shapes-watermark.safetensors",
        "37551c494d993fc8e8cb4ecb92d880a275cc62909bf04f394d9f5517edfb8ab2", WATERMARK_SPEC,
        "python -m xaikit.train --model vgg16-shapes-watermark"),
    "vgg16-shapes-revised": ShippedWeights(  # the same file: see xaikit.train.RECIPES
        SHAPES_WEIGHTS, SHAPES_SHA256, REVISED_SPEC,
        "python -m xaikit.train --model vgg16-shapes"),
    "vgg16-shapes-bn": ShippedWeights(
        "vgg16-shapes-bn.safetensors",
        "b0fc57d1a1f166e449e950dab205a140e405e2c58aa166ad36a197b3501b1659", BN_SPEC,
        "python -m xaikit.train --model vgg16-shapes", batch_norm=True),
}
"""The shipped models of the ``vgg16-shapes`` layout: weights file, SHA-256, spec, recipe."""


def shapes_architecture(batch_norm: bool = False, init: bool = True) -> nn.Module:
    """The ``vgg16-shapes`` network, with freshly initialised or (``init=False``) arbitrary weights.

    torchvision's ``VGG`` class and ``make_layers`` with configuration "D" scaled down to
    :data:`SHAPES_WIDTHS`, a 3x3 adaptive average pool (the identity on 112x112 inputs, as
    torchvision's 7x7 one is on 224x224) and hidden dense layers of :data:`SHAPES_HIDDEN` units.
    With ``batch_norm=True`` it is the ``vgg16_bn`` layout used for training
    (:mod:`xaikit.train` folds the BatchNorms away).
    ``init=True`` applies torchvision's VGG initialisation (Kaiming-normal convolutions,
    N(0, 0.01) dense layers, zero biases).
    """
    from torchvision.models.vgg import VGG, make_layers

    w = SHAPES_WIDTHS
    cfg = [w[0], w[0], "M", w[1], w[1], "M", w[2], w[2], w[2], "M",
           w[3], w[3], w[3], "M", w[4], w[4], w[4], "M"]
    with torch.device("meta"):  # VGG's own 25088x4096 classifier is replaced: don't allocate it
        model = VGG(nn.Identity(), num_classes=len(SHAPES_CLASSES), init_weights=False)
    model.features = make_layers(cfg, batch_norm=batch_norm)
    model.avgpool = nn.AdaptiveAvgPool2d((3, 3))
    model.classifier = nn.Sequential(
        nn.Linear(w[4] * 3 * 3, SHAPES_HIDDEN), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(SHAPES_HIDDEN, SHAPES_HIDDEN), nn.ReLU(True), nn.Dropout(0.5),
        nn.Linear(SHAPES_HIDDEN, len(SHAPES_CLASSES)))
    if init:
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0, 0.01)
                nn.init.zeros_(module.bias)
    return model


def layer_table(model: nn.Module, input_size: int | None = None) -> list[tuple[str, str, tuple, int]]:
    """``(name, layer type, output shape, parameters)`` for every leaf layer, in forward order.

    The output shapes come from one forward pass of a ``(1, 3, S, S)`` zero input, ``S`` the
    model's input size (notebooks 00 and 08 print this as VGG-16's layer table).
    """
    size = input_size or model_spec(model).input_size
    rows: list[tuple[str, str, tuple, int]] = []
    names = {module: name for name, module in model.named_modules()}

    def record(module, inputs, output):
        params = sum(p.numel() for p in module.parameters())
        rows.append((names[module], type(module).__name__, tuple(output.shape[1:]), params))

    leaves = [m for m in model.modules() if next(m.children(), None) is None]
    handles = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, size, size, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return rows


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_weights(name: str = "vgg16-shapes", path: str | Path | None = None, *,
                 expected_sha256: str | None = None) -> nn.Module:
    """A model of the ``vgg16-shapes`` layout from a safetensors file, SHA-256 checked.

    Parameters
    ----------
    name : str
        One of :data:`SHIPPED`: fixes the spec, the default file in ``data/`` and its hash.
    path : str or Path, optional
        Another weights file (e.g. a retrained one); pass its ``expected_sha256`` too.
    expected_sha256 : str, optional
        Default: the recorded hash of the shipped file.

    Returns
    -------
    torch.nn.Module
        On the CPU, with ``model.xaikit_spec`` set (not yet in eval mode: :func:`load_model`
        does that).

    Raises
    ------
    WeightsIntegrityError
        No hash is known, the file is missing, or its SHA-256 does not match.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    shipped = SHIPPED[name]
    expected = expected_sha256 or shipped.sha256
    if expected is None:
        raise WeightsIntegrityError(
            f"no {name} weights are shipped yet; train them with {shipped.command} and pass the "
            "SHA-256 of its report as expected_sha256")
    path = Path(path) if path is not None else data_dir() / shipped.file
    if not path.is_file():
        raise WeightsIntegrityError(
            f"the {name} weights {path.name} are missing from {path.parent}; restore "
            f"them from the repository (git checkout data/) or retrain: {shipped.command}")
    actual = sha256(path)
    if actual != expected:
        raise WeightsIntegrityError(
            f"{path.name} is corrupted or was replaced: SHA-256 {actual[:16]}... does not match "
            f"the recorded {expected[:16]}...; restore it (git checkout data/) or retrain with "
            f"{shipped.command}")
    model = shapes_architecture(batch_norm=shipped.batch_norm, init=False)
    try:
        state = load_file(str(path))
    except SafetensorError as error:  # only reachable if the hash table was updated wrongly
        raise WeightsIntegrityError(f"{path.name} is not a safetensors file: {error}") from None
    model.load_state_dict(state)
    model.xaikit_spec = shipped.spec
    return model


def _vgg16_cache_path() -> Path:
    from torchvision.models import VGG16_Weights

    filename = VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1]
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _offline() -> bool:
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _load_vgg16() -> nn.Module:
    """torchvision's VGG-16 with ImageNet weights, failing fast and clearly when offline."""
    from torchvision.models import VGG16_Weights, vgg16

    cache = _vgg16_cache_path()
    hint = (f"The ImageNet weights (528 MB) are not in torch's cache ({cache}) and could not "
            "be downloaded. Connect once to download them, copy the file there, or use the "
            "embedded offline model: xaikit.load_model('vgg16-shapes').")
    if not cache.is_file() and _offline():
        raise ModelUnavailableError(f"{hint} ({OFFLINE_ENV} is set, so no download was tried.)")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return vgg16(weights=VGG16_Weights.IMAGENET1K_V1, progress=True)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise ModelUnavailableError(f"{hint} ({type(error).__name__}: {error})") from error
    finally:
        socket.setdefaulttimeout(previous)


def _untrained_vgg16(seed: int = 0) -> nn.Module:
    from torchvision.models import vgg16

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return vgg16(weights=None)


DEVICE_ENV = "XAIKIT_DEVICE"


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """Where :func:`load_model` puts a model.

    ``None``: ``$XAIKIT_DEVICE`` if set, else CUDA when ``torch.cuda.is_available()``, else
    the CPU. A name torch does not know, or CUDA on a machine without it, is a ValueError that
    says where the name came from.
    """
    source = "device"
    if device is None and os.environ.get(DEVICE_ENV):
        device, source = os.environ[DEVICE_ENV], f"the environment variable {DEVICE_ENV}"
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string such as 'cpu' or 'cuda', or a torch.device, "
                        f"got {device!r}")
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        raise ValueError(f"unknown device {device!r} in {source}; use 'cpu', 'cuda' or "
                         "'cuda:N'") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source} asks for {device!r}, but CUDA is not available here "
                         "(torch.cuda.is_available() is False); use 'cpu'")
    if resolved.type not in ("cpu", "cuda"):
        raise ValueError(f"{source} asks for {device!r}; xaikit runs on 'cpu' or 'cuda'")
    return resolved


def load_model(name: str | None = None, *, device: str | torch.device | None = None,
               verbose: bool = True, input_size: int | None = None) -> nn.Module:
    """Load a VGG-16 in eval mode with frozen parameters.

    Parameters
    ----------
    name : {"vgg16", "vgg16-shapes", "auto", "vgg16-untrained"}, optional
        ``"vgg16"``: torchvision's ImageNet weights (downloaded once; offline it fails within
        seconds with :class:`ModelUnavailableError`). ``"vgg16-shapes"``: the embedded model,
        trained on :func:`xaikit.data.make_shapes`, SHA-256 checked. ``"auto"``: ``vgg16`` when
        its weights are cached or downloadable, else ``vgg16-shapes``. ``"vgg16-untrained"``:
        torchvision's architecture with seeded random weights, to test the ImageNet path
        offline. Default: ``$XAIKIT_MODEL``, or ``"auto"`` (an unknown name there is a
        ValueError that names the variable).
    device : str or torch.device, optional
        Where to put the model (:func:`resolve_device`): default ``$XAIKIT_DEVICE``, else
        CUDA when a GPU is available, else the CPU. :func:`xaikit.preprocess` and
        :func:`xaikit.example_batch` put inputs on the model's device.
    verbose : bool
        With ``"auto"``, say which model was picked and why (on stderr).
    input_size : int, optional
        Input side of an ImageNet-path model (default ``$XAIKIT_INPUT_SIZE``, else 224;
        torchvision's VGG-16 takes any side of at least 32 pixels thanks to its adaptive
        pooling). Smaller sizes make the ImageNet code path cheap to test (``make
        test-imagenet-path-small``). The shapes models are trained at their size: they refuse
        another ``input_size`` and ignore ``$XAIKIT_INPUT_SIZE`` (a notebook run on the small
        ImageNet path still loads the shapes models it always uses at their own size).

    Returns
    -------
    torch.nn.Module
        A torchvision ``VGG`` in eval mode with ``requires_grad=False`` parameters (explainers
        need gradients of the input only; call ``model.requires_grad_(True)`` to train it) and
        a :class:`ModelSpec` in ``model.xaikit_spec``.
    """
    from_env = name is None and bool(os.environ.get(MODEL_ENV))
    if name is None:
        name = os.environ.get(MODEL_ENV) or "auto"
    if not isinstance(name, str) or name not in MODEL_NAMES:
        if from_env:
            raise ValueError(
                f"unknown model {name!r} in the environment variable {MODEL_ENV} (load_model() "
                f"was called without a name, so it read ${MODEL_ENV}); set {MODEL_ENV} to one "
                f"of {', '.join(MODEL_NAMES)}, unset it (default 'auto') or pass a name")
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    target_device = resolve_device(device)  # before any loading: a bad name fails at once
    explicit_size = input_size is not None
    size = _input_size(input_size)
    imagenet_size = 224 if size is None else size
    if name == "auto":
        try:
            model, spec = _load_vgg16(), _imagenet_spec("vgg16", imagenet_size)
            reason = "its ImageNet weights are available"
        except ModelUnavailableError:
            model, spec = load_weights(), SHAPES_SPEC
            reason = "the ImageNet weights of vgg16 are neither cached nor downloadable"
        if verbose:
            print(f"xaikit.load_model('auto'): using {spec.name} ({reason})", file=sys.stderr)
    elif name == "vgg16":
        model, spec = _load_vgg16(), _imagenet_spec("vgg16", imagenet_size)
    elif name == "vgg16-untrained":
        model, spec = _untrained_vgg16(), _imagenet_spec("vgg16-untrained", imagenet_size)
    else:
        model = load_weights(name)
        spec = model.xaikit_spec
    if spec.dataset != "imagenet" and explicit_size and size != spec.input_size:
        raise ValueError(f"{spec.name} was trained on {spec.input_size}x{spec.input_size} "
                         f"inputs; input_size={size} applies to the ImageNet-path models only")
    model.xaikit_spec = spec
    return model.eval().requires_grad_(False).to(target_device)

