"""``xk.setup``: one call at the top of every notebook.

Seeds Python, NumPy and torch, switches torch to deterministic algorithms, silences the
warnings of the upstream libraries that would otherwise land in committed outputs, and
applies the workbook's matplotlib style (``xaikit.mplstyle``).

Introduced in notebook ``00_setup_and_tour``.
"""
from __future__ import annotations

import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch

__all__ = ["STYLE", "setup"]

STYLE = Path(__file__).with_name("xaikit.mplstyle")
"""The workbook's matplotlib style file."""


def setup(seed: int = 0, *, quiet: bool = True, style: bool = True) -> None:
    """Seed everything once and make results repeatable.

    Parameters
    ----------
    seed : int
        Seeds :mod:`random`, NumPy's global generator and torch's. Stochastic explainers use
        their own ``seed`` option and do not depend on this.
    quiet : bool
        Ignore ``UserWarning``, ``FutureWarning`` and ``DeprecationWarning`` (upstream libraries
        emit them on every call; committed notebook outputs must not contain them).
    style : bool
        Apply the workbook's matplotlib style.
    """
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if quiet:
        for category in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.filterwarnings("ignore", category=category)
    if style:
        import matplotlib.pyplot as plt

        plt.style.use(STYLE)
