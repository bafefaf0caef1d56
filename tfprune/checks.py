"""Argument checks shared by every public entry point: one message format everywhere.

Each check returns the normalised value or raises with one line naming the argument, the value
and what is allowed::

    >>> fraction(0.9, "sparsity")
    0.9
    >>> fraction(1.5, "sparsity")
    Traceback (most recent call last):
    ...
    ValueError: sparsity: got 1.5; allowed: a number in [0, 1).
"""
from __future__ import annotations

import math
import numbers

import numpy as np
from typing import Iterable

__all__ = ["choice", "fraction", "integer", "positive_number", "seed"]


def fraction(value, argument: str, *, closed_low: bool = True, closed_high: bool = False,
             allowed: "str | None" = None) -> float:
    """``value`` as a float in the interval between 0 and 1 (closed or open at each end)."""
    interval = ("[" if closed_low else "(") + "0, 1" + ("]" if closed_high else ")")
    allowed = allowed or f"a number in {interval}"
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError(f"{argument}: expected a number in {interval}, got {value!r}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{argument}: expected a number in {interval}, got {value!r}.") from None
    low_ok = number >= 0.0 if closed_low else number > 0.0
    high_ok = number <= 1.0 if closed_high else number < 1.0
    if math.isnan(number) or not (low_ok and high_ok):
        raise ValueError(f"{argument}: got {value!r}; allowed: {allowed}.")
    return number


def integer(value, argument: str, minimum: int = 0, *, allowed: "str | None" = None) -> int:
    """``value`` as an int >= ``minimum`` (bools and floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{argument}: got {value!r}; allowed: {allowed or f'an integer >= {minimum}'}.")
    return int(value)


def positive_number(value, argument: str) -> float:
    """A finite number > 0 (learning rates, temperatures, ...)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{argument}: got {value!r}; allowed: a finite number > 0.")
    return float(value)


def nonnegative_number(value, argument: str) -> float:
    """A finite number >= 0 (penalties, weight decay, ...)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{argument}: got {value!r}; allowed: a finite number >= 0.")
    return float(value)


def choice(value, argument: str, allowed: Iterable):
    """``value`` if it is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f"{argument}: got {value!r}; allowed: {', '.join(map(repr, allowed))}.")
    return value


def seed(value, argument: str = "seed") -> "int | None":
    """A random seed: ``None`` (fresh entropy) or an integer >= 0 (bools, floats, strings refused).

        >>> seed("abc")
        Traceback (most recent call last):
        ...
        ValueError: seed: got 'abc'; allowed: None or an integer >= 0.
    """
    if value is None:
        return None
    return integer(value, argument, 0, allowed="None or an integer >= 0")


def all_finite(values) -> bool:
    """Whether every value of the array ``values`` is finite, in one pass without a temporary when
    it is (a finite sum has no NaN/inf term; a sum that overflows falls back to the exact check)."""
    return bool(np.isfinite(values.sum())) or bool(np.isfinite(values).all())
