"""Figure export: the registry, the command line, byte-identical reruns, and the data each
figure function hands back to its notebook cell (checked against independent values)."""
from __future__ import annotations

import json
import time

import pytest
import torch

import xaikit as xk
from xaikit import figures
from xaikit.__main__ import main, strip_widgets

FAST = ["tent_composition", "lrp_composite_maps", "gradcam_maps"]
NAMED_IN_ISSUE = ["lrp_rule_comparison", "smoothgrad_grid", "tent_composition",
                  "shattered_relu_nets", "gradcam_layers"]


@pytest.fixture(scope="module")
def model():
    return xk.load_model("vgg16-shapes")


def test_registry_lists_the_workbook_figures():
    infos = {f.name: f for f in figures.list_figures()}
    assert set(NAMED_IN_ISSUE) <= set(infos)
    assert infos["smoothgrad_grid"].notebook == "05_smoothgrad"
    assert infos["gradcam_layers"].section.startswith("2. Which layer?")
    notebooks = [f.notebook for f in figures.list_figures()]
    assert notebooks == sorted(notebooks)
    assert figures.smoothgrad_grid is infos["smoothgrad_grid"].fn


def test_registry_rejects_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        figures.register_figure("tent_composition", notebook="x", section="y", title="z")(lambda m: m)
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        figures.figure_info("nope")
    with pytest.raises(ValueError, match="identifier"):
        figures.register_figure("a b", notebook="x", section="y", title="z")


def test_export_is_byte_identical_on_a_rerun(model, tmp_path):
    first = figures.export_figures(model, tmp_path / "a", FAST, progress=False)
    figures.export_figures(model, tmp_path / "b", FAST, progress=False)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 2 * len(FAST) + 2                  # PNG + PDF each, manifest.json/.csv
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert [e["name"] for e in first] == FAST
    png = (tmp_path / "a" / first[0]["png"]).read_bytes()
    pdf = (tmp_path / "a" / first[0]["pdf"]).read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png
    assert pdf.startswith(b"%PDF") and b"CreationDate" not in pdf and b"Producer" not in pdf


def test_cli_writes_figures_and_manifest(tmp_path, capsys):
    out = tmp_path / "figs"
    assert main(["figures", "--model", "vgg16-shapes", "--out", str(out), "--only",
                 "tent_composition", "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "vgg16-shapes"
    entry = manifest["figures"][0]
    assert entry["notebook"] == "04_shattered_gradients" and entry["section"].startswith("1. ")
    assert (out / entry["png"]).is_file() and (out / entry["pdf"]).is_file()
    header = (out / "manifest.csv").read_text().splitlines()[0]
    assert header == "name,png,pdf,notebook,section,title"
    assert main(["figures", "--out", str(out), "--only", "nope", "--no-progress"]) == 2
    assert "unknown figure" in capsys.readouterr().err


def test_cli_fails_fast_offline_for_imagenet(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XAIKIT_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))        # no cached weights
    start = time.perf_counter()
    assert main(["figures", "--model", "vgg16", "--out", str(tmp_path / "f")]) == 2
    assert time.perf_counter() - start < 30
    err = capsys.readouterr().err
    assert "vgg16-shapes" in err                                     # names the offline alternative
    assert not (tmp_path / "f").exists()


def test_tent_data_match_the_closed_form(model):
    fig, data = figures.tent_composition(model)
    for depth, (y, slope, pieces) in data["results"].items():
        assert pieces == 2**depth and slope.abs().max() == 2**depth
        assert 0 <= y.min() and y.max() <= 1
    assert len(fig.axes) == 8


def test_gradcam_layer_scores_are_per_image_and_match_the_metrics(model):
    from xaikit.evaluation import pointing_game, relevance_mass

    fig, data = figures.gradcam_layers(model, scored=6, seed=5)
    keys = [*figures.gradcam.BLOCKS, "default"]
    assert list(data["maps"]) == list(data["layers"]) == list(data["scores"]) == keys
    assert data["layers"]["default"] == "features.29"
    assert data["sizes"]["block 1"] == (112, 112) and data["sizes"]["block 4"] == (14, 14)
    assert data["sizes"]["block 5"] == data["sizes"]["default"] == (7, 7)
    ex = xk.example_batch(model, n=2)
    want = xk.explain(model, ex.x, ex.labels, "gradcam", layer="features.21")
    assert torch.allclose(data["maps"]["block 4"], want, atol=1e-6)
    assert torch.allclose(data["maps"]["default"], xk.explain(model, ex.x, ex.labels, "gradcam"),
                          atol=1e-6)
    scored = xk.data.make_shapes(6, seed=5)
    h = xk.explain(model, xk.preprocess(scored.images, model), scored.labels, "gradcam",
                   layer="features.14").sum(1)
    m = scored.masks.float()
    by_hand = (h * m).flatten(1).sum(1) / h.flatten(1).sum(1)          # no all-zero map here
    assert torch.allclose(data["scores"]["block 3"]["mass"], by_hand, atol=1e-5)
    assert torch.equal(data["scores"]["block 3"]["mass"], relevance_mass(h, scored.masks))
    assert torch.equal(data["scores"]["block 3"]["hit"], pointing_game(h, scored.masks))
    for s in data["scores"].values():
        assert s["mass"].shape == s["hit"].shape == (6,)
        assert ((0 <= s["mass"]) & (s["mass"] <= 1)).all() and ((0 <= s["hit"]) & (s["hit"] <= 1)).all()
    assert torch.allclose(data["object_area"], m.flatten(1).mean(1))
    assert len(fig.axes) == 2 * len(keys)


def test_gradcam_class_pairs_cycle_through_the_ordered_class_pairs(model):
    pairs = figures.gradcam.gradcam_class_pairs(model, n=3, seed=7)
    assert pairs["classes"].tolist() == [[0, 1], [0, 2], [0, 3]] and pairs["region"] == "object"
    images, masks = xk.data.make_pair(1, (0, 2), seed=8)
    assert torch.equal(pairs["images"][1:2], images) and torch.equal(pairs["masks"][1:2], masks)
    assert torch.equal(pairs["x"], xk.preprocess(pairs["images"], model))
    assert pairs["masks"].flatten(2).any(2).all() and not (pairs["masks"][:, 0] & pairs["masks"][:, 1]).any()
    assert len(figures.gradcam.gradcam_class_pairs(model)["x"]) == xk.budget(model).gradcam_pairs
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        figures.gradcam.gradcam_class_pairs(model, n=1)


def test_gradcam_class_pairs_compose_two_photos_on_imagenet():
    from xaikit.examples import PHOTO_LABELS

    small = xk.load_model("vgg16-untrained", input_size=64)
    pairs = figures.gradcam.gradcam_class_pairs(small, n=2)
    assert pairs["region"] == "photo" and pairs["images"].shape == (2, 3, 64, 64)
    assert pairs["classes"].tolist() == [[PHOTO_LABELS["chelsea"], PHOTO_LABELS["coffee"]],
                                         [PHOTO_LABELS["coffee"], PHOTO_LABELS["chelsea"]]]
    assert torch.equal(pairs["images"][0, :, :, :32], pairs["images"][1, :, :, 32:])   # swapped halves
    cat = xk.denormalize(xk.preprocess(xk.load_image("chelsea"), small), small)
    half = torch.nn.functional.interpolate(cat, size=(64, 32), mode="bilinear", antialias=True)
    assert torch.allclose(pairs["images"][0, :, :, :32], half[0].clamp(0, 1), atol=1e-6)
    assert pairs["masks"][:, 0, :, :32].all() and not pairs["masks"][:, 0, :, 32:].any()
    assert torch.equal(pairs["masks"][:, 1], ~pairs["masks"][:, 0])
    assert len(figures.gradcam.gradcam_class_pairs(small)["x"]) == xk.budget(small).gradcam_pairs
    with pytest.raises(ValueError, match="composes 12 two-photo images"):
        figures.gradcam.gradcam_class_pairs(small, n=13)


def test_gradcam_class_discrimination_shares_and_correlations_by_hand(model):
    fig, data = figures.gradcam_class_discrimination(model, pairs=2, shown=1)
    x, classes, masks = data["x"], data["classes"], data["masks"].float()
    for k in (0, 1):
        cam = xk.explain(model, x, classes[:, k], "gradcam")
        assert torch.allclose(data["gradcam"][k], cam, atol=1e-6)
        h = cam.sum(1)
        total = h.flatten(1).sum(1)
        assert torch.allclose(data["own"][:, k], (h * masks[:, k]).flatten(1).sum(1) / total, atol=1e-5)
        assert torch.allclose(data["other"][:, k], (h * masks[:, 1 - k]).flatten(1).sum(1) / total,
                              atol=1e-5)
    for name, maps in (("Grad-CAM", data["gradcam"]), ("Guided Backprop", data["guided_backprop"])):
        for i in range(2):
            pair = torch.stack([maps[0][i].sum(0).flatten(), maps[1][i].sum(0).flatten()])
            want = torch.corrcoef(pair)[0, 1]
            assert data["correlation"][name][i].item() == pytest.approx(want.item(), abs=1e-5)
    with torch.no_grad():
        assert torch.allclose(data["logits"], model(x).gather(1, classes), atol=1e-6)
    assert len(fig.axes) == 5 + 4                                      # 4 maps with a colour bar each


def test_map_correlation_is_pearson_and_nan_for_a_constant_map():
    from xaikit.figures.gradcam import map_correlation

    u = torch.tensor([[1.0, 2.0, 3.0, 4.0]]).view(1, 1, 2, 2)
    assert map_correlation(u, 2 * u + 1).item() == pytest.approx(1.0)
    assert map_correlation(u, -u).item() == pytest.approx(-1.0)
    assert map_correlation(u, torch.zeros_like(u)).isnan().all()


def test_strip_widgets(tmp_path):
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {
        "text/plain": "x", "image/png": "AA==",
        "application/vnd.jupyter.widget-view+json": {"model_id": "abc"}}}]}],
        "metadata": {"widgets": {"state": {}}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "n.ipynb"
    path.write_text(json.dumps(nb))
    assert strip_widgets(path) == 2
    out = json.loads(path.read_text())
    assert out["cells"][0]["outputs"][0]["data"] == {"text/plain": "x", "image/png": "AA=="}
    assert "widgets" not in out["metadata"]
    assert strip_widgets(path) == 0


# ------------------------------------------------ notebooks 11 and 14: data against the formulas
def test_continuity_tie_matches_the_closed_forms():
    fig, data = figures.continuity_tie()
    t, maps = data["t"], data["maps"]
    f = torch.maximum(torch.ones_like(t), t)
    gxi = torch.where(t[:, None] > 1, torch.stack([torch.zeros_like(t), t], 1),
                      torch.stack([torch.ones_like(t), torch.zeros_like(t)], 1))
    assert torch.equal(maps["Gradient x Input"], gxi)                # torch.max: the tie goes to x1
    assert torch.allclose(maps["Integrated Gradients"], gxi)         # constant gradient on the ray
    shapley = torch.stack([(1 + f - t) / 2, (t + f - 1) / 2], 1)
    assert torch.allclose(maps["Shapley split"], shapley)
    # alpha1beta0 on relu(x1 - x2), relu(x2 - x1), relu(x1 + x2) (weights 1/2 each): the first two
    # units send their relevance to their positive input, the third splits in proportion to x
    lrp = torch.stack([(torch.relu(1 - t) + 1) / 2, (torch.relu(t - 1) + t) / 2], 1)
    torch.testing.assert_close(maps["LRP-alpha1beta0"], lrp, atol=1e-6, rtol=0)
    assert data["jump"]["Gradient x Input"] == pytest.approx(2.005, abs=1e-5)   # (1, 0) -> (0, 1.005)
    assert data["jump"]["Shapley split"] == pytest.approx(0.005, abs=1e-5)
    assert len(fig.axes) == 2


def test_lrp_selection_maps_explain_each_setting(model):
    ex = xk.example_batch(model, n=2)
    settings = {"a": {"gamma": 0.25, "epsilon": 0.25}, "b": {"gamma": 0.0, "epsilon": 1e-6}}
    fig, data = figures.lrp_selection_maps(model, settings, ex.x, ex.labels, ex.images)
    for name, setting in settings.items():
        want = xk.explain(model, ex.x, ex.labels, "lrp", composite="vgg16", **setting)
        assert torch.equal(data["maps"][name], want)
    assert not torch.equal(data["maps"]["a"], data["maps"]["b"])
    assert len(fig.axes) == 4
    with pytest.raises(ValueError, match="together"):
        figures.lrp_selection_maps(model, settings, ex.x)


def test_randomisation_curves_average_over_images():
    import pandas as pd

    frame = pd.DataFrame({"step": [1, 1, 2, 2], "layer": ["fc", "fc", "conv", "conv"],
                          "image": [0, 1, 0, 1], "spearman": [0.9, 0.7, 0.2, 0.0]})
    fig, data = figures.randomisation_curves(None, {"m": frame})
    assert data["curves"]["m"].tolist() == pytest.approx([0.8, 0.1])
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["fc"]


def test_localisation_maps_with_and_without_masks(model):
    ex = xk.example_batch(model, n=1)
    attrs = {label: torch.randn_like(ex.x) for label in figures.evaluation.LOCALISATION_METHODS}
    fig, _ = figures.localisation_maps(model, attrs, ex.images, ex.masks)
    assert fig.axes[0].get_title() == "object mask"
    fig, _ = figures.localisation_maps(model, attrs, ex.images, None)          # photos
    assert fig.axes[0].get_title() == "image (no mask)"
    with pytest.raises(ValueError, match="lacks"):
        figures.localisation_maps(model, {"Gradient": attrs["Gradient"]}, ex.images)


def test_cleverhans_heatmaps_explain_the_star_logit_of_both_models():
    from xaikit import cleverhans

    fig, data = figures.cleverhans_heatmaps(columns=2)
    star = xk.class_names(cleverhans.load_watermark_model()).index(cleverhans.WATERMARK_CLASS)
    test = cleverhans.held_out_scenes()["as in training"]
    images = test.images[test.labels == star][:2]
    assert torch.equal(data["images"], images)
    for name, m in {"Clever Hans": cleverhans.load_watermark_model(),
                    "clean": xk.load_model("vgg16-shapes")}.items():
        want = xk.explain(m, xk.preprocess(images, m), star, "lrp", composite="vgg16")
        assert torch.equal(data["maps"][name], want)
    assert len(fig.axes) == 6


def test_cli_list_names_every_figure_in_aligned_columns(capsys):
    assert main(["figures", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    infos = figures.list_figures()
    assert len(lines) == len(infos)
    starts = {line.index(info.name) for line, info in zip(lines, infos)}
    assert len(starts) == 1                                          # the name column lines up


def test_readme_states_the_number_of_figures():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"({len(figures.list_figures())} figures of notebooks 00-14)" in readme


# ------------------------------------------------------------------- notebook 05: SmoothGrad
def _small_budget(monkeypatch, **settings):
    """Make the SmoothGrad figures see a cheaper budget (the default comes from xk.budget)."""
    from xaikit.figures import smoothgrad

    monkeypatch.setattr(smoothgrad, "budget", lambda m: xk.budget(m, **settings))


def test_smoothgrad_grid_takes_its_ts_from_the_budget_and_shares_a_scale_per_row(model, monkeypatch):
    from xaikit.figures import smoothgrad

    _small_budget(monkeypatch, smoothgrad_ts=(1, 2))
    fig, data = figures.smoothgrad_grid(model)
    assert data["ts"] == (1, 2)
    assert set(data["grid"]) == {(b, n, t) for b in smoothgrad.BASES for n in smoothgrad.NOISES
                                 for t in (1, 2)}
    ex = xk.example_batch(model, n=1)
    want = xk.explain(model, ex.x, ex.labels, "smoothgrad", base="gradient_x_input", noise=1.0,
                      noise_unit="std", samples=2, seed=0)
    assert torch.equal(data["grid"][("gradient_x_input", 1.0, 2)], want)
    in_range = xk.explain(model, ex.x, ex.labels, "smoothgrad", base="gradient_x_input",
                          noise=1.0, samples=2, seed=0)
    assert not torch.allclose(want, in_range)                        # the rows are in std units
    rows = len(smoothgrad.BASES) * len(smoothgrad.NOISES)
    assert len(fig.axes) == rows * 3 + rows                          # input + 2 maps per row, colour bars
    heat = [ax.images[-1] for ax in fig.axes if ax.get_title().startswith("T =")]   # row by row
    limit = data["limits"][("gradient", 0.5)]
    assert heat[0].get_clim() == heat[1].get_clim() == (-limit, limit)
    h = want.sum(1).abs().flatten().double()
    assert data["limits"][("gradient_x_input", 1.0)] == pytest.approx(h.quantile(0.995).item())


def test_smoothgrad_convergence_defaults_come_from_the_budget(model, monkeypatch):
    _small_budget(monkeypatch, smoothgrad_ts=(1, 4), smoothgrad_reference=8)
    _, data = figures.smoothgrad_convergence(model)
    assert data["ts"] == (1, 2, 4) and data["reference_samples"] == 8
    ex = xk.example_batch(model, n=1)
    ref = xk.explain(model, ex.x, ex.labels, "smoothgrad", noise=0.2, samples=8, seed=123)
    m = xk.explain(model, ex.x, ex.labels, "smoothgrad", noise=0.2, samples=2, seed=7)
    assert data["dist"][1] == pytest.approx(((m - ref).norm() / ref.norm()).item(), rel=1e-6)


def test_noise_as_range_fraction_matches_a_hand_computation():
    from xaikit.figures.smoothgrad import noise_as_range_fraction

    x = torch.tensor([0.0, 1.0, 2.0, 5.0]).view(1, 1, 2, 2)      # range 5, mean 2, std sqrt(3.5)
    assert noise_as_range_fraction(x, 0.5) == pytest.approx(0.5 * 3.5 ** 0.5 / 5)
    assert noise_as_range_fraction(x, 0.2, "range") == pytest.approx(0.2)
    with pytest.raises(ValueError, match="noise_unit"):
        noise_as_range_fraction(x, 0.5, "percent")
    with pytest.raises(ValueError, match="one input"):
        noise_as_range_fraction(x.expand(2, 1, 2, 2), 0.5)
