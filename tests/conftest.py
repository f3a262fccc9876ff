"""Shared fixtures. Every test runs with the network blocked: a test that reaches for a
non-loopback address fails with ``OSError`` (as name resolution does offline)."""
from __future__ import annotations

import socket

import pytest
import torch

_LOCAL = ("127.0.0.1", "::1", "localhost", "")


def _blocked_getaddrinfo(original):
    def getaddrinfo(host, *args, **kwargs):
        if host is None or str(host) in _LOCAL:
            return original(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, f"network blocked in tests ({host})")

    return getaddrinfo


def _blocked_connect(original):
    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in _LOCAL and not host.startswith("/"):
            raise OSError(f"network blocked in tests ({host})")
        return original(self, address)

    return connect


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Block every non-loopback connection for the duration of a test."""
    monkeypatch.setattr(socket, "getaddrinfo", _blocked_getaddrinfo(socket.getaddrinfo))
    monkeypatch.setattr(socket.socket, "connect", _blocked_connect(socket.socket.connect))


@pytest.fixture(scope="session")
def shapes_model():
    """The shipped ``vgg16-shapes`` model (loaded once)."""
    import xaikit as xk

    return xk.load_model("vgg16-shapes")


@pytest.fixture()
def rng_state_guard():
    """Fail a test that changes torch's or NumPy's global random state."""
    import numpy as np

    torch_state, np_state = torch.get_rng_state(), np.random.get_state()
    yield
    assert torch.equal(torch_state, torch.get_rng_state()), "torch's global RNG was used"
    after = np.random.get_state()
    assert np_state[0] == after[0] and (np_state[1] == after[1]).all(), "NumPy's global RNG was used"
