"""Request body parsing: JSON, refusing what PostgreSQL cannot store.

PostgreSQL's text and jsonb types cannot hold U+0000, so a NUL anywhere in a request would
fail at the database as a 500 after validation passed. Refused here, at the boundary, with a
400 that names the field."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers

from noc.storable import first_unstorable


def nul_path(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) in `value` holding a NUL, if any."""
    found = first_unstorable(value, path, floats=False)
    return found[0] if found else None


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
