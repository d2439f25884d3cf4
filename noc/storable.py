"""What PostgreSQL cannot store: U+0000 in text or jsonb, and (for numbers) NaN or infinity."""

from __future__ import annotations

import math
from typing import Any

NUL = "\x00"


def first_unstorable(value: Any, path: str = "", *, floats: bool = True) -> tuple[str, str] | None:
    """(where, why) of the first string (dict keys included) holding a NUL in `value`, a string
    or JSON of them, or, with `floats`, of the first non-finite number; None when all is fine.
    `where` is `path` extended with `.key` and `[index]`."""
    if isinstance(value, str):
        if NUL in value:
            return path, f"NUL characters (\\u0000) are not accepted (at {path})."
        return None
    if isinstance(value, float):
        if floats and not math.isfinite(value):
            return path, f"{value} is not a finite number (at {path})."
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            found = first_unstorable(key, here) if isinstance(key, str) else None
            if found or (found := first_unstorable(item, here, floats=floats)):
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if found := first_unstorable(item, f"{path}[{index}]", floats=floats):
                return found
    return None
