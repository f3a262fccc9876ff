"""Validation of option values shared by the methods and metrics.

Each function raises a ``TypeError`` (wrong kind of value) or a ``ValueError`` (right kind,
out of range or not finite) whose message names the option, the value received and what is
allowed. Python's ``bool`` is rejected where a number is expected (``True`` is an ``int``).
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Collection

__all__ = ["check_bool", "check_choice", "check_int", "check_real", "check_seed"]


def check_real(name: str, value: Any, *, low: float | None = None, high: float | None = None,
               low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float in the interval given by ``low``/``high``.

    ``low_open``/``high_open`` exclude the bound itself (``low=0, low_open=True``: ``> 0``).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and (value >= high if high_open else value > high)
    if too_low or too_high:
        left = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        right = "" if high is None else f"{'<' if high_open else '<='} {high:g}"
        raise ValueError(f"{name} must be {' and '.join(s for s in (left, right) if s)}, "
                         f"got {value!r}")
    return value


def check_int(name: str, value: Any, low: int | None = 1, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]`` (``None``: unbounded on that side)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        bound = (f"in [{low}, {high}]" if low is not None and high is not None
                 else f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name} must be an int {bound}, got {value!r}")
    return value


def check_seed(value: Any, name: str = "seed") -> int:
    """A seed for ``torch.Generator.manual_seed``: an int >= 0 (a float seed is a TypeError)."""
    return check_int(name, value, low=0)


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is ``True`` or ``False`` (not a truthy string or number)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return value


def check_choice(name: str, value: Any, choices: Collection[str]) -> str:
    """``value`` if it is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value
