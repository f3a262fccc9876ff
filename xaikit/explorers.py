"""Interactive explorers: turn a method's knobs and watch the heatmap change (ipywidgets).

Each ``*_explorer(model)`` returns an :class:`Explorer`, an ``ipywidgets.VBox`` of controls
(image, class and the method's options) above an ``ipywidgets.Image`` holding the rendered
figure. The figure for the default settings is drawn when the explorer is created; the
explorer's rich output carries it as ``image/png`` next to the live widget view, so an
executed notebook shows it without a kernel (commit notebooks after
``python -m xaikit strip-widgets``, which drops the widget view and state that only a live
kernel can use). Attributions are cached per (image, class, options), so moving a slider back
or changing only the colour scale costs no recomputation; on ``vgg16-shapes`` a new setting
redraws in well under a second (``benchmarks/bench_explorers.py``).

Explorers: :func:`occlusion_explorer` (notebook ``01_perturbation``), :func:`ig_explorer`
(``03_gradients``), :func:`smoothgrad_explorer` (``05_smoothgrad``), :func:`lrp_explorer`
(``08_lrp_rules_vgg16``), :func:`gradcam_explorer` (``10_gradcam``).

References
----------
The methods' papers are cited in :mod:`xaikit.methods.perturbation`, :mod:`xaikit.methods.gradients`,
:mod:`xaikit.methods.lrp` and :mod:`xaikit.methods.gradcam`; ipywidgets' ``observe`` API drives the redraws.
"""
from __future__ import annotations

import base64
import io
from collections import OrderedDict
from typing import Any, Callable

import ipywidgets as widgets
import torch
from torch import nn

from .examples import example_batch
from .explain import explain
from .methods.lrp_composites import vgg16_composite
from .models import model_spec
from .plotting import plot_heatmap

__all__ = ["Explorer", "occlusion_explorer", "ig_explorer", "smoothgrad_explorer",
           "lrp_explorer", "gradcam_explorer", "LRP_GROUPS"]

CACHE_SIZE = 64
"""Attributions kept per explorer (least recently used dropped first)."""

RENDER_DPI = 90
"""Resolution of the explorer's figure (lower than the style's savefig.dpi: redraws are fast)."""


class Explorer(widgets.VBox):
    """Controls above a rendered heatmap; any control change redraws.

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`xaikit.load_model`.
    method : str
        An :func:`xaikit.explain` method.
    controls : dict of str to ipywidgets.ValueWidget
        The method's knobs, by name.
    to_options : callable
        ``{name: value} -> options`` for :func:`xaikit.explain`, hashable (the cache key).
    prepare : callable, optional
        ``options -> options`` passed to :func:`xaikit.explain` (e.g. a tuple of pairs to a
        dict); default: unchanged.
    signed : bool
        Diverging (signed) or sequential colour map.
    n_images : int
        Example images offered (:func:`xaikit.example_batch`).
    """

    def __init__(self, model: nn.Module, method: str, controls: dict[str, widgets.ValueWidget],
                 to_options: Callable[[dict], dict], *, signed: bool = True, n_images: int = 4,
                 title: str = "", prepare: Callable[[dict], dict] | None = None):
        self.model, self.method, self.signed, self.title = _checked(model), method, signed, title
        self.spec = model_spec(model)
        self.examples = example_batch(model, n=n_images)
        self.image = widgets.Dropdown(options=[(n, i) for i, n in enumerate(self.examples.names)],
                                      value=0, description="image")
        self.target = widgets.Dropdown(
            options=[("true class", -1)] + [(c, k) for k, c in enumerate(self.spec.classes)],
            value=-1, description="class")
        self.controls = {"image": self.image, "class": self.target, **controls}
        self.to_options, self.prepare = to_options, prepare or dict
        self.cache: OrderedDict = OrderedDict()
        self.computed = 0                      # attributions computed (cache misses)
        self.figure = widgets.Image(format="png", layout=widgets.Layout(width="480px"))
        self.figure.add_class("xaikit-explorer-figure")
        rows = [widgets.HBox([self.image, self.target])]
        rows += [widgets.HBox(list(controls.values())[i:i + 2]) for i in range(0, len(controls), 2)]
        super().__init__(rows + [self.figure])
        for control in self.controls.values():
            control.observe(self._changed, names="value")
        self.redraw()

    def settings(self) -> dict:
        """Current value of every control, by name."""
        return {name: control.value for name, control in self.controls.items()}

    def _target(self, index: int) -> int:
        chosen = self.target.value
        return int(self.examples.labels[index]) if chosen == -1 else int(chosen)

    def attribution(self) -> torch.Tensor:
        """``(1, C, H, W)`` attribution for the current settings (cached)."""
        settings = self.settings()
        index = settings.pop("image")
        settings.pop("class")
        options = self.to_options(settings)
        key = (index, self._target(index), tuple(sorted(options.items(), key=lambda kv: kv[0])))
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        attr = explain(self.model, self.examples.x[index:index + 1], self._target(index),
                       self.method, **self.prepare(options))
        self.computed += 1
        self.cache[key] = attr
        if len(self.cache) > CACHE_SIZE:
            self.cache.popitem(last=False)
        return attr

    def render(self) -> bytes:
        """The figure for the current settings as PNG bytes (fixed metadata)."""
        from matplotlib.figure import Figure

        index = self.image.value
        attr = self.attribution()
        fig = Figure(figsize=(5.2, 2.6))
        left, right = fig.subplots(1, 2)
        left.imshow(self.examples.images[index].permute(1, 2, 0).clamp(0, 1).numpy())
        left.set_axis_off()
        left.set_title(f"{self.examples.names[index]}", fontsize=9)
        plot_heatmap(attr, image=self.examples.images[index:index + 1], ax=right,
                     signed=self.signed,
                     title=f"{self.title}: {self.spec.classes[self._target(index)]}")
        right.title.set_fontsize(9)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=RENDER_DPI, bbox_inches=None,
                    metadata={"Software": None})
        return buffer.getvalue()

    @property
    def png(self) -> bytes:
        """The figure currently shown, as PNG bytes."""
        return bytes(self.figure.value)

    def redraw(self) -> None:
        """Recompute (or fetch from the cache) and show the figure."""
        self.figure.value = self.render()

    def _changed(self, change) -> None:
        self.redraw()

    def describe(self) -> str:
        """One line naming the explorer and its settings (the ``text/plain`` output)."""
        settings = self.settings()
        settings["image"] = self.examples.names[settings["image"]]
        settings["class"] = self.spec.classes[self._target(self.image.value)]
        shown = ", ".join(f"{k} {v}" for k, v in settings.items())
        return f"{self.title} explorer ({shown})"

    def _repr_mimebundle_(self, **kwargs):
        data = super()._repr_mimebundle_(**kwargs)
        data["text/plain"] = self.describe()
        data["image/png"] = base64.b64encode(self.png).decode("ascii")
        return data


def _checked(model: nn.Module) -> nn.Module:
    """``model``, or TypeError: the explorer functions check before reading the model's spec."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    return model


def _conv_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def occlusion_explorer(model: nn.Module, **kwargs: Any) -> Explorer:
    """Occlusion (notebook ``01_perturbation``): window size and fill value.

    The stride is half the window (961 positions at the smallest window on ``vgg16-shapes``).
    References: Zeiler & Fergus 2014 (ECCV)."""
    _checked(model)
    side = model_spec(model).input_size
    window = widgets.SelectionSlider(options=[side // 16, side // 8, side // 4, side // 2],
                                     value=side // 8, description="window")
    fill = widgets.Dropdown(options=[("zero", 0.0), ("mean", "mean"), ("blur", "blur"),
                                     ("noise", "noise")], value=0.0, description="fill")
    return Explorer(model, "occlusion", {"window": window, "fill": fill},
                    lambda s: {"window": s["window"], "stride": max(1, s["window"] // 2),
                               "fill": s["fill"], "progress": False}, title="occlusion", **kwargs)


def ig_explorer(model: nn.Module, **kwargs: Any) -> Explorer:
    """Integrated Gradients (notebook ``03_gradients``): steps and baseline.

    References: Sundararajan et al. 2017 (ICML)."""
    _checked(model)
    steps = widgets.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64], value=16,
                                    description="steps")
    baseline = widgets.Dropdown(options=["black", "blur", "zero"], value="black",
                                description="baseline")
    return Explorer(model, "integrated_gradients", {"steps": steps, "baseline": baseline},
                    lambda s: dict(s), title="IG", **kwargs)


def smoothgrad_explorer(model: nn.Module, **kwargs: Any) -> Explorer:
    """SmoothGrad (notebook ``05_smoothgrad``): noise level, samples T and base method.

    References: Smilkov et al. 2017 (arXiv:1706.03825)."""
    _checked(model)
    noise = widgets.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05, description="noise")
    samples = widgets.SelectionSlider(options=[1, 2, 4, 8, 16, 32, 64], value=16,
                                      description="T")
    base = widgets.Dropdown(options=["gradient", "gradient_x_input"], value="gradient",
                            description="base")
    return Explorer(model, "smoothgrad", {"noise": noise, "samples": samples, "base": base},
                    lambda s: {"noise": round(s["noise"], 4), "samples": s["samples"],
                               "base": s["base"], "seed": 0}, title="SmoothGrad", **kwargs)


LRP_GROUPS = {"first layer": ("zb", "flat", "w2", "0", "epsilon", "gamma"),
              "blocks 1-3": ("gamma", "epsilon", "alpha1beta0", "0"),
              "blocks 4-5": ("epsilon", "gamma", "alpha1beta0", "0"),
              "dense": ("0", "epsilon")}
"""Layer groups of the VGG-16 composite and the rules offered for each (default first)."""


def _lrp_groups(model: nn.Module) -> dict[str, list[str]]:
    rules = vgg16_composite(model)
    groups: dict[str, list[str]] = {g: [] for g in LRP_GROUPS}
    for name, rule in rules.items():
        group = ("first layer" if rule == "zb" else "blocks 1-3" if rule == "gamma"
                 else "blocks 4-5" if rule == "epsilon" else "dense")
        groups[group].append(name)
    return groups


def lrp_explorer(model: nn.Module, **kwargs: Any) -> Explorer:
    """LRP (notebook ``08_lrp_rules_vgg16``): a rule per layer group, gamma and epsilon.

    The defaults are the VGG-16 composite (:func:`xaikit.methods.lrp_composites.vgg16_composite`).
    References: Montavon et al. 2019, "Layer-wise relevance propagation: an overview"."""
    _checked(model)
    groups = _lrp_groups(model)
    controls: dict[str, widgets.ValueWidget] = {
        g: widgets.Dropdown(options=list(rules), value=rules[0], description=g,
                            style={"description_width": "80px"})
        for g, rules in LRP_GROUPS.items()}
    controls["gamma"] = widgets.FloatSlider(value=0.25, min=0.0, max=2.0, step=0.05,
                                            description="gamma")
    controls["epsilon"] = widgets.FloatLogSlider(value=0.25, base=10, min=-3, max=1, step=0.25,
                                                 description="epsilon")

    def to_options(s: dict) -> dict:
        composite = tuple((layer, s[g]) for g, layers in groups.items() for layer in layers)
        return {"composite": composite, "gamma": round(s["gamma"], 4),
                "epsilon": round(s["epsilon"], 6)}

    return Explorer(model, "lrp", controls, to_options, title="LRP",
                    prepare=lambda o: {**o, "composite": dict(o["composite"])}, **kwargs)


def gradcam_explorer(model: nn.Module, **kwargs: Any) -> Explorer:
    """Grad-CAM (notebook ``10_gradcam``): which convolution, or (the default) the rectified
    maps of the last one.

    References: Selvaraju et al. 2017 (ICCV)."""
    _checked(model)
    from .methods.gradcam import default_layer

    default = default_layer(model)          # the rectified maps of the last convolution
    names = _conv_names(model) + [default]
    layer = widgets.Dropdown(options=list(dict.fromkeys(names)), value=default, description="layer")
    return Explorer(model, "gradcam", {"layer": layer}, lambda s: dict(s), signed=False,
                    title="Grad-CAM", **kwargs)
