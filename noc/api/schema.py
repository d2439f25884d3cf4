"""What the OpenAPI schema says beyond what drf-spectacular infers: the error responses.

Every operation may answer in the one JSON error shape (noc/api/errors.py): 401 and 403
(authentication and role), 429 (rate limits), 400 (bad input), 404 where its path
names an object and on every read (a page past the end, an unknown object named in the
query), 409, 413 and 415 where it writes. An operation that documents its own shape for one
of these statuses gets the error shape as an alternative. Documenting them lets clients and
the schema tests validate errors like any other answer.
"""

from __future__ import annotations

ERROR = {
    "type": "object",
    "description": "The API's one error shape.",
    "properties": {
        "message": {"type": "string", "description": "What is wrong, naming the field."},
        "code": {"type": "string", "description": "invalid, not_found, throttled, …"},
        "errors": {
            "type": "object",
            "description": "Messages per field (dotted paths for nested fields).",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
        },
    },
    "required": ["message", "code"],
}
REASONS = {
    "400": "Invalid input: `errors` names each field at fault.",
    "401": "Not authenticated, or the API key is unknown, revoked or expired.",
    "403": "The caller's role does not allow this.",
    "404": "No such object.",
    "409": "Conflicts with the current state (e.g. an illegal incident transition).",
    "413": "The request body is too large.",
    "415": "The request body's content type is not accepted.",
    "429": "Rate limit exceeded; retry after `Retry-After` seconds.",
}
WRITES = ("post", "put", "patch", "delete")


def _error_statuses(path: str, method: str, operation: dict) -> list[str]:
    statuses = ["400", "401", "403", "429"]  # 400: a malformed request (a NUL in the URL, …)
    if "{" in path or method == "get":
        statuses.append("404")
    if method in WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses += ["413", "415"]
    return statuses


def document_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: add the error responses to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"$ref": "#/components/schemas/Error"}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation):
                _add_error(responses, status, reference)
    return result


def _add_error(responses: dict, status: str, reference: dict) -> None:
    documented = responses.get(status)
    if documented is None:
        responses[status] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": reference}},
        }
        return
    json_content = documented.setdefault("content", {}).setdefault("application/json", {})
    own = json_content.get("schema")
    if own is not None and own != reference:
        json_content["schema"] = {"oneOf": [own, reference]}
