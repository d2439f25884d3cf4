"""http_json: numbers at configured JSON paths of a JSON document, one series each."""

from __future__ import annotations

from collections.abc import Mapping

from collectors.kinds import BodyError, Reading
from collectors.kinds.json_paths import document, number_at
from observability.points import MetricPoint


def reading(
    body: bytes, *, paths: Mapping[str, str], time_us: int, labels: Mapping[str, str]
) -> Reading:
    """One point per path that holds a number; the paths that do not are the error (the
    others are still stored)."""
    doc = document(body)
    found, problems = [], []
    for name, expr in paths.items():
        try:
            found.append(MetricPoint(name, dict(labels), number_at(doc, expr), time_us))
        except BodyError as exc:
            problems.append(str(exc))
    return Reading(points=found, error="; ".join(problems))
