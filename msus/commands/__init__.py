"""One module per ``msus`` verb: ``add_parser(subparsers)`` and ``run(args) -> int``."""

from __future__ import annotations

import json
import sys


def print_json(obj) -> None:
    """Write ``obj`` as JSON to stdout (NaN/inf become null)."""
    json.dump(_clean(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def _clean(obj):
    import math

    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [_clean(v) for v in obj.tolist()]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj
