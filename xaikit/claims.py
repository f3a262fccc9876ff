"""Claims about trained behaviour: asserted on the models they were verified on, reported elsewhere.

The workbook asserts two kinds of statements. **Identities** (conservation on bias-free networks,
LRP-0 = Gradient x Input, summation-to-delta, IG completeness, the CRP sums) hold for every
network and are plain ``assert`` statements. **Claims about trained behaviour** ("LRP-gamma has
the smallest negative share", "the Clever Hans model fails without the mark") were verified on
the shipped offline models only. On any other model (torchvision's VGG-16 with its ImageNet
weights, random weights, a learner's own network) the notebook must not stop on a phenomenon it
could not verify there: it prints whether the claim holds on that model, with the numbers the
cell printed above it::

    xk.claim(model, scores["LRP"] > scores["random"], "LRP beats the random control")

On a verified model a claim that does not hold raises :class:`ClaimError` (an
``AssertionError``), exactly like ``assert``; on the others :func:`claim` prints one line,
``claim: <statement>: holds (or: does not hold) on <model>; verified on vgg16-shapes only``.
"""
from __future__ import annotations

from torch import nn

from .models import model_spec

__all__ = ["VERIFIED_MODELS", "ClaimError", "claim", "verified"]

VERIFIED_MODELS = frozenset({"vgg16-shapes", "vgg16-shapes-bn", "vgg16-shapes-watermark",
                             "vgg16-shapes-revised"})
"""The models the workbook's claims about trained behaviour were verified on: the shipped offline
model, its unfolded BatchNorm twin and the Clever Hans pair, all trained by :mod:`xaikit.train`."""


class ClaimError(AssertionError):
    """A claim about trained behaviour does not hold on a model it was verified on."""


def verified(model: nn.Module) -> bool:
    """Whether ``model`` is one of :data:`VERIFIED_MODELS` (by its spec's name)."""
    return model_spec(model).name in VERIFIED_MODELS


def claim(model: nn.Module, holds: bool, statement: str) -> None:
    """Assert ``holds`` on a verified model; print whether it holds on any other.

    Parameters
    ----------
    model : torch.nn.Module
        The model the claim is about (from :func:`xaikit.load_model`).
    holds : bool
        The claim, computed by the cell from the numbers it printed (a Python or NumPy bool,
        or a one-element boolean tensor).
    statement : str
        The claim in words, as the notebook states it.

    Returns ``None``, so that a cell ending in a claim displays nothing.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement must be a non-empty string, got {statement!r}")
    if hasattr(holds, "numel"):                                   # a torch tensor
        if holds.numel() != 1 or holds.dtype.is_floating_point:
            raise TypeError(f"holds must be one boolean, got a tensor of shape "
                            f"{tuple(holds.shape)} and dtype {holds.dtype}")
        holds = bool(holds.item())
    elif type(holds).__name__ in ("bool", "bool_"):               # Python or NumPy bool
        holds = bool(holds)
    else:
        raise TypeError(f"holds must be a bool (the claim, computed), got {type(holds).__name__}")
    name = model_spec(model).name
    if name in VERIFIED_MODELS:
        if not holds:
            raise ClaimError(f"{statement}: does not hold on {name}, where the workbook verified it")
        return
    print(f"claim: {statement}: {'holds' if holds else 'does not hold'} on {name}; "
          f"verified on vgg16-shapes only")
