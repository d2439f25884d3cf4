"""JSON paths of http_json and ohlcv collectors: validated when saved, compiled once."""

from __future__ import annotations

import json
import math
from functools import lru_cache
from typing import Any

from jsonpath_ng import JSONPath
from jsonpath_ng.ext import parse as parse_json_path

from collectors.kinds import BodyError


def path_problem(expr: Any) -> str | None:
    """Why `expr` is not a JSON path, or None."""
    if not isinstance(expr, str) or not expr.strip():
        return "must be a non-empty JSON path such as $.data.price"
    try:
        compiled(expr)
    except Exception as exc:  # jsonpath-ng raises bare Exception on parse errors
        return f"invalid JSON path {expr!r}: {exc}"
    return None


@lru_cache(maxsize=1024)
def compiled(expr: str) -> JSONPath:
    return parse_json_path(expr)


def document(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BodyError(f"the body is not JSON: {exc}") from exc


def number_at(doc: Any, expr: str) -> float:
    """The number at `expr` in `doc` (a number, or a string holding one, as price APIs send);
    raises BodyError naming the path when there is none."""
    matches = [m.value for m in compiled(expr).find(doc)]
    if not matches:
        raise BodyError(f"{expr}: nothing at this path")
    value = matches[0]
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BodyError(f"{expr}: {json.dumps(value)[:80]} is not a number")
    try:
        number = float(value)
    except ValueError as exc:
        raise BodyError(f"{expr}: {value[:80]!r} is not a number") from exc
    if not math.isfinite(number):
        raise BodyError(f"{expr}: {value} is not a finite number")
    return number
