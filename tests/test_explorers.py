"""The interactive explorers: each draws a figure when created, redraws when a control is set
programmatically (as a slider move does), caches attributions, and shows the method's result
for the chosen settings (checked against ``xk.explain`` called directly)."""
from __future__ import annotations

import base64

import pytest
import torch

import xaikit as xk
from xaikit import explorers

PNG = b"\x89PNG\r\n\x1a\n"


def _other(widget):
    """A value of ``widget`` different from its current one."""
    if hasattr(widget, "options") and widget.options:
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        return next(v for v in reversed(values) if v != widget.value)
    return widget.max if widget.value != widget.max else widget.min


@pytest.fixture(scope="module")
def model():
    return xk.load_model("vgg16-shapes")


@pytest.mark.parametrize("factory, knob", [
    (explorers.occlusion_explorer, "window"), (explorers.ig_explorer, "steps"),
    (explorers.smoothgrad_explorer, "noise"), (explorers.lrp_explorer, "blocks 1-3"),
    (explorers.gradcam_explorer, "layer")])
def test_explorer_redraws_on_a_control_and_caches(model, factory, knob):
    explorer = factory(model)
    first = explorer.png
    assert first.startswith(PNG)
    assert explorer.computed == 1
    control = explorer.controls[knob]
    default = control.value
    control.value = _other(control)                     # what a slider move or a pick does
    assert explorer.png.startswith(PNG) and explorer.png != first
    assert explorer.computed == 2
    control.value = default                              # back: from the cache, same figure
    assert explorer.computed == 2 and explorer.png == first


def test_explorer_image_and_class_selection(model):
    explorer = explorers.gradcam_explorer(model)
    first = explorer.png
    explorer.image.value = 2
    assert explorer.png != first
    other_class = (int(explorer.examples.labels[2]) + 1) % len(explorer.spec.classes)
    explorer.target.value = other_class
    x = explorer.examples.x[2:3]
    want = xk.explain(model, x, other_class, "gradcam")        # the default layer, as the explorer
    assert torch.allclose(explorer.attribution(), want, atol=1e-6)
    assert explorer.spec.classes[other_class] in explorer.describe()


def test_lrp_explorer_rules_reach_explain(model):
    explorer = explorers.lrp_explorer(model)
    x, t = explorer.examples.x[:1], int(explorer.examples.labels[0])
    assert torch.allclose(explorer.attribution(),
                          xk.explain(model, x, t, "lrp", composite="vgg16"), rtol=1e-5, atol=1e-6)
    for group in explorers.LRP_GROUPS:
        explorer.controls[group].value = "0"
    assert torch.allclose(explorer.attribution(), xk.explain(model, x, t, "lrp", rule="0"),
                          rtol=1e-5, atol=1e-6)
    explorer.controls["blocks 1-3"].value = "gamma"
    before = explorer.attribution()
    explorer.controls["gamma"].value = 1.0
    after = explorer.attribution()
    assert not torch.allclose(before, after)
    rules = {name: ("gamma" if rule == "gamma" else "0")
             for name, rule in xk.methods.lrp_composites.vgg16_composite(model).items()}
    assert torch.allclose(after, xk.explain(model, x, t, "lrp", composite=rules, gamma=1.0),
                          rtol=1e-5, atol=1e-6)


def test_smoothgrad_explorer_matches_explain(model):
    explorer = explorers.smoothgrad_explorer(model)
    explorer.controls["samples"].value = 4
    explorer.controls["noise"].value = 0.5
    x, t = explorer.examples.x[:1], int(explorer.examples.labels[0])
    want = xk.explain(model, x, t, "smoothgrad", noise=0.5, samples=4, seed=0)
    assert torch.equal(explorer.attribution(), want)


def test_static_figure_in_the_rich_output(model):
    explorer = explorers.ig_explorer(model)
    bundle = explorer._repr_mimebundle_()
    assert base64.b64decode(bundle["image/png"]) == explorer.png
    assert bundle["text/plain"] == explorer.describe()
    assert bundle["text/plain"].startswith("IG explorer (image ") and "0x" not in bundle["text/plain"]
    assert "application/vnd.jupyter.widget-view+json" in bundle


def test_explorer_rejects_a_non_model():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        explorers.gradcam_explorer("vgg16")


EXPLORER_NOTEBOOKS = {"01_perturbation": "occlusion_explorer", "03_gradients": "ig_explorer",
                      "05_smoothgrad": "smoothgrad_explorer", "08_lrp_rules_vgg16": "lrp_explorer",
                      "10_gradcam": "gradcam_explorer"}


@pytest.mark.parametrize("stem, factory", EXPLORER_NOTEBOOKS.items())
def test_committed_explorer_output_is_static(stem, factory):
    """The committed notebook shows the explorer's default figure as a plain PNG, with no
    widget view (which reads "model not found" without a kernel) and no widget state."""
    import json
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "notebooks" / f"{stem}.ipynb"
    nb = json.loads(path.read_text())
    cells = [c for c in nb["cells"]
             if c["cell_type"] == "code" and f"{factory}(model)" in "".join(c["source"])]
    assert len(cells) == 1, f"{stem} should call {factory}(model) in one cell"
    (output,) = cells[0]["outputs"]
    assert set(output["data"]) == {"text/plain", "image/png"}
    text = "".join(output["data"]["text/plain"])
    assert text.endswith(")") and " explorer (image " in text
    assert base64.b64decode(output["data"]["image/png"]).startswith(PNG)
    assert "widgets" not in nb["metadata"]
