"""Device handling, tested on the CPU: where ``load_model`` puts a model (argument,
``XAIKIT_DEVICE``, CUDA when available), clear errors for devices that cannot be used, and
inputs that follow the model's device and dtype."""
from __future__ import annotations

import copy

import pytest
import torch

import xaikit as xk
from xaikit.cleverhans import load_watermark_model
from xaikit.models import resolve_device


def test_default_is_cuda_when_available_else_cpu(monkeypatch):
    monkeypatch.delenv("XAIKIT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device() == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device() == torch.device("cuda")
    assert resolve_device("cuda:1") == torch.device("cuda", 1)


def test_environment_variable_and_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("XAIKIT_DEVICE", "cpu")
    assert resolve_device() == torch.device("cpu")          # the variable beats CUDA
    assert resolve_device("cuda") == torch.device("cuda")   # the argument beats the variable


@pytest.mark.parametrize("env, device, error, match", [
    ("garbage", None, ValueError, "unknown device 'garbage' in the environment variable "
                                  "XAIKIT_DEVICE"),
    (None, "garbage", ValueError, "unknown device 'garbage' in device"),
    (None, "cuda", ValueError, "CUDA is not available here"),
    ("cuda:0", None, ValueError, "environment variable XAIKIT_DEVICE asks for 'cuda:0', but "
                                 "CUDA is not available"),
    (None, "meta", ValueError, "xaikit runs on 'cpu' or 'cuda'"),
    (None, 0.5, TypeError, "device must be a string"),
])
def test_unusable_devices_are_clear_errors(monkeypatch, env, device, error, match):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    if env is None:
        monkeypatch.delenv("XAIKIT_DEVICE", raising=False)
    else:
        monkeypatch.setenv("XAIKIT_DEVICE", env)
    with pytest.raises(error, match=match):
        resolve_device(device)


def test_loaders_use_the_resolved_device(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("XAIKIT_DEVICE", "cpu")
    for model in (xk.load_model("vgg16-shapes"), load_watermark_model()):
        assert {p.device for p in model.parameters()} == {torch.device("cpu")}
    monkeypatch.setenv("XAIKIT_DEVICE", "cuda")
    for load in (lambda: xk.load_model("vgg16-shapes"), load_watermark_model):
        with pytest.raises(ValueError, match="XAIKIT_DEVICE asks for 'cuda'"):
            load()


def test_inputs_follow_the_model_device_and_dtype(shapes_model):
    # the meta device stands in for a GPU: no computation, but every tensor must land there
    on_meta = copy.deepcopy(shapes_model).to("meta")
    examples = xk.example_batch(on_meta, n=2)
    assert examples.x.device.type == "meta" and examples.x.shape == (2, 3, 112, 112)
    double = copy.deepcopy(shapes_model).double()
    x = xk.preprocess(xk.load_image("chelsea"), double)
    assert x.dtype == torch.float64
    assert xk.explain(double, x, 0, "gradient").dtype == torch.float64
