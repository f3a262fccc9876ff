"""xk.claim: claims about trained behaviour asserted where verified, reported elsewhere."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import xaikit as xk
from xaikit.claims import VERIFIED_MODELS, ClaimError


@pytest.fixture(scope="module")
def shapes():
    return xk.load_model("vgg16-shapes")


@pytest.fixture(scope="module")
def untrained():
    return xk.load_model("vgg16-untrained", input_size=32)


def test_a_claim_that_holds_passes_silently_on_a_verified_model(shapes, capsys):
    assert xk.claim(shapes, True, "the sky is up") is None        # a cell ending in a claim shows nothing
    assert capsys.readouterr().out == ""


def test_a_claim_that_fails_raises_on_a_verified_model(shapes):
    with pytest.raises(ClaimError, match="the sky is down: does not hold on vgg16-shapes"):
        xk.claim(shapes, False, "the sky is down")
    with pytest.raises(AssertionError):                  # a ClaimError is an AssertionError
        xk.claim(shapes, np.bool_(False), "the sky is down")


def test_other_models_print_instead_of_stopping(untrained, capsys):
    xk.claim(untrained, False, "LRP beats random")
    xk.claim(untrained, torch.tensor(True), "LRP beats random")
    out = capsys.readouterr().out.splitlines()
    assert out == ["claim: LRP beats random: does not hold on vgg16-untrained; verified on vgg16-shapes only",
                   "claim: LRP beats random: holds on vgg16-untrained; verified on vgg16-shapes only"]


def test_a_trained_but_unverified_model_is_not_asserted(shapes, capsys):
    other = xk.load_model("vgg16-shapes")
    other.xaikit_spec = dataclasses.replace(xk.model_spec(shapes), name="my-finetuned-vgg")
    xk.claim(other, False, "x")
    assert "does not hold on my-finetuned-vgg" in capsys.readouterr().out
    assert not xk.verified(other) and xk.verified(shapes)


@pytest.mark.parametrize("bad", [1, 0.0, None, "yes", torch.tensor([True, False]), torch.tensor(1.0)])
def test_holds_must_be_one_boolean(shapes, bad):
    with pytest.raises(TypeError, match="holds must be"):
        xk.claim(shapes, bad, "a claim")


@pytest.mark.parametrize("bad", ["", "  ", None])
def test_the_statement_is_required(shapes, bad):
    with pytest.raises(ValueError, match="statement"):
        xk.claim(shapes, True, bad)


def test_the_verified_models_are_the_shipped_trained_ones():
    shipped = {name for name in xk.MODEL_NAMES if name.startswith("vgg16-shapes")}
    assert VERIFIED_MODELS == shipped
