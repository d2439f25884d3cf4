"""Request body parsing: JSON, form and multipart, refusing what the project cannot handle.

PostgreSQL's text and jsonb types cannot hold U+0000, so a NUL anywhere in a request would
fail at the database as a 500 after validation passed: every parser refuses it here, at the
boundary, with a 400 that names the field. JSON nested deeper than `MAX_JSON_DEPTH` is refused
too: Python's decoder and every recursive walk after it (validation, serializers, jsonb) would
otherwise end in a RecursionError."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers

from noc.storable import first_unstorable

# Deep enough for any configuration the API takes (headers, JSON assertions), far from
# Python's recursion limit whatever the stack holds when the walks run.
MAX_JSON_DEPTH = 32


def nul_path(value: Any, path: str = "") -> str | None:
    """The path of the first string (key or value) in `value` holding a NUL, if any."""
    found = first_unstorable(value, path, floats=False)
    return found[0] if found else None


def too_deep(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON `value` nests objects and arrays more than `limit` levels (no recursion)."""
    level = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


def _refuse_nul(path: str) -> exceptions.ValidationError:
    field = path.split(".", 1)[0].split("[", 1)[0] or "non_field_errors"
    return exceptions.ValidationError(
        {field: [f"NUL characters (\\u0000) are not accepted (at {path})."]}
    )


def nested_too_deeply() -> exceptions.ParseError:
    return exceptions.ParseError(
        f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels of objects and arrays."
    )


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise nested_too_deeply() from None
        if too_deep(data):
            raise nested_too_deeply()
        path = nul_path(data)
        if path is not None:
            raise _refuse_nul(path)
        return data


def _form_nul_path(data, files=None) -> str | None:
    """The first field name, value or file name of a form holding a NUL, if any."""
    for key, values in data.lists():
        if "\x00" in key:
            return key
        for index, value in enumerate(values):
            if isinstance(value, str) and "\x00" in value:
                return key if len(values) == 1 else f"{key}[{index}]"
    for key, uploads in files.lists() if files is not None else []:
        if "\x00" in key or any("\x00" in (upload.name or "") for upload in uploads):
            return key
    return None


class FormParser(parsers.FormParser):
    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        path = _form_nul_path(data)
        if path is not None:
            raise _refuse_nul(path)
        return data


class MultiPartParser(parsers.MultiPartParser):
    def parse(self, stream, media_type=None, parser_context=None):
        result = super().parse(stream, media_type, parser_context)
        path = _form_nul_path(result.data, result.files)
        if path is not None:
            raise _refuse_nul(path)
        return result
