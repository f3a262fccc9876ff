"""xk.setup and xk.plot_heatmap."""
import warnings

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import xaikit as xk


@pytest.fixture()
def restore_globals():
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with warnings.catch_warnings(), matplotlib.rc_context():
        yield
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def test_setup_seeds_everything(restore_globals):
    xk.setup(3)
    a = (torch.rand(2), np.random.rand(2))
    xk.setup(3)
    b = (torch.rand(2), np.random.rand(2))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert torch.are_deterministic_algorithms_enabled()
    assert matplotlib.rcParams["svg.hashsalt"] == "xaikit"
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn("noise from an upstream library", UserWarning)
    assert not caught


def test_setup_rejects_bad_seed(restore_globals):
    with pytest.raises(TypeError):
        xk.setup("0")


def test_plot_heatmap_signed_and_symmetric(monkeypatch):
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plot_heatmap called show"))
    attr = torch.zeros(1, 3, 8, 8)
    attr[0, 0, 0, 0], attr[0, 0, 1, 1] = 5.0, -1.0
    fig, ax = xk.plot_heatmap(attr, image=torch.rand(1, 3, 8, 8), percentile=100)
    heat = ax.images[-1]
    assert heat.get_clim() == (-5.0, 5.0) and heat.get_cmap().name == "bwr"
    fig2, ax2 = xk.plot_heatmap(attr[0], ax=ax, signed=False, percentile=100)
    assert ax2 is ax and fig2 is fig and ax.images[-1].get_clim() == (0.0, 5.0)
    plt.close(fig)


@pytest.mark.parametrize("attr", [torch.zeros(2, 3, 4, 4), torch.zeros(4), torch.full((4, 4), float("nan"))])
def test_plot_heatmap_bad_input(attr):
    with pytest.raises(ValueError):
        xk.plot_heatmap(attr)
