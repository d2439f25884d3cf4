"""Request body parsing: JSON, refusing what PostgreSQL cannot store.

PostgreSQL's text and jsonb types cannot hold U+0000, so a NUL anywhere in a request would
fail at the database as a 500 after validation passed. Refused here, at the boundary, with a
400 that names the field."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers

NUL = "\x00"


def nul_path(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) in `value` holding a NUL, if any."""
    if isinstance(value, str):
        return path if NUL in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and NUL in key:
                return here
            if (found := nul_path(item, here)) is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if (found := nul_path(item, f"{path}[{index}]")) is not None:
                return found
    return None


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        path = nul_path(data)
        if path is not None:
            field = path.split(".", 1)[0].split("[", 1)[0] or "non_field_errors"
            raise exceptions.ValidationError(
                {field: [f"NUL characters (\\u0000) are not accepted (at {path})."]}
            )
        return data
