"""xk.budget: the per-model costly settings of the notebooks, in one place."""
from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest

import xaikit as xk
from xaikit.budgets import BUDGETS, Budget

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(scope="module")
def shapes_model():
    return xk.load_model("vgg16-shapes")


def test_budget_follows_the_model_family(shapes_model):
    assert xk.budget(shapes_model) == BUDGETS["shapes"]
    imagenet = xk.load_model("vgg16-untrained", input_size=32)
    assert xk.budget(imagenet) == BUDGETS["imagenet"]


def test_overrides_replace_fields_and_unknown_names_fail(shapes_model):
    b = xk.budget(shapes_model, lime_samples=1000, smoothgrad_ts=(1, 2))
    assert (b.lime_samples, b.smoothgrad_ts) == (1000, (1, 2))
    assert b.ig_steps == BUDGETS["shapes"].ig_steps
    with pytest.raises(TypeError, match="unknown budget setting"):
        xk.budget(shapes_model, lime_sample=1000)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, (), (4, 0), "64"])
def test_bad_values_fail_with_the_field_name(shapes_model, bad):
    with pytest.raises(ValueError, match="lime_samples"):
        xk.budget(shapes_model, lime_samples=bad)


def test_describe_names_each_setting_of_a_notebook():
    b = BUDGETS["shapes"]
    line = b.describe("01")
    assert line.startswith("budget (offline model): ")
    assert "LIME: 256 samples" in line and "150 Adam steps" in line
    assert "SmoothGrad" not in line                    # notebook 05's settings only with "05"
    every = b.describe()
    for f in dataclasses.fields(Budget):
        if f.name != "family":
            assert f.metadata["label"].split("{")[0].strip() in every, f.name
    with pytest.raises(ValueError, match="no budget settings for notebook '99'"):
        b.describe("99")


def test_an_unknown_family_fails(shapes_model):
    stray = xk.load_model("vgg16-shapes")
    stray.xaikit_spec = dataclasses.replace(xk.model_spec(shapes_model), dataset="mnist")
    with pytest.raises(ValueError, match="no budget for model family 'mnist'"):
        xk.budget(stray)


def test_every_notebook_that_names_a_budget_prints_it():
    """A notebook that reads ``budget.X`` for its notebook's settings prints ``describe`` once."""
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                           if c["cell_type"] == "code")
        if re.search(r"\bbudget\.[a-z]", source):
            assert f'budget.describe("{path.name[:2]}")' in source, path.name
