"""Numbers as JSON, TOML or a database hands them over: a finite float or int, or None."""

from __future__ import annotations

import math

from msus.errors import MsusError


def opt_float(v, error: type[MsusError] | None = None) -> float | None:
    """``v`` as a finite float; None for None, NaN and ±inf.

    A value that is not a number is None too, or — with ``error`` — raises ``error`` with one
    line ("expected a number, got 'abc'").
    """
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError) as exc:
        if error is None:
            return None
        raise error(f"expected a number, got {v!r}") from exc
    return f if math.isfinite(f) else None


def opt_int(v, error: type[MsusError] | None = None) -> int | None:
    """``v`` as an int (None for None and booleans; a non-number is None or raises ``error``)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError) as exc:
        if error is None:
            return None
        raise error(f"expected a whole number, got {v!r}") from exc
