"""xaikit: a workbook on explaining image classifiers (VGG-16, offline-first).

The flat public namespace below is everything the notebooks use::

    import xaikit as xk
    model = xk.load_model("vgg16-shapes")
    image = xk.load_image("chelsea")
    x = xk.preprocess(image, model)
    attr = xk.explain(model, x, target, "lrp", composite="vgg16")
    fig, ax = xk.plot_heatmap(attr, image=image)
"""
from . import data, evaluation, figures, methods, references
from .budgets import BUDGETS, Budget, budget
from .claims import claim, verified
from .examples import Examples, example_batch
from .explain import explain, list_methods
from .images import IMAGE_NAMES, denormalize, load_image, preprocess
from .models import (
                     MODEL_NAMES,
                     ModelSpec,
                     ModelUnavailableError,
                     WeightsIntegrityError,
                     class_names,
                     layer_table,
                     load_model,
                     model_spec,
)
from .plotting import plot_heatmap
from .session import setup

__version__ = "0.1.0"

__all__ = [
    "BUDGETS",
    "Budget",
    "budget",
    "claim",
    "verified",
    "IMAGE_NAMES",
    "MODEL_NAMES",
    "ModelSpec",
    "ModelUnavailableError",
    "WeightsIntegrityError",
    "class_names",
    "data",
    "evaluation",
    "denormalize",
    "example_batch",
    "Examples",
    "explain",
    "figures",
    "layer_table",
    "list_methods",
    "load_image",
    "load_model",
    "methods",
    "model_spec",
    "plot_heatmap",
    "preprocess",
    "references",
    "setup",
]
