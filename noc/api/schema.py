"""What the OpenAPI schema says beyond what drf-spectacular infers: the error responses.

Every operation may answer in the one JSON error shape (noc/api/errors.py): 401 and 403
(authentication and role), 429 (rate limits), 400 where it reads input, 404 where its path
names an object, 409 and 413 where it writes. Documenting them lets clients and the schema
test validate errors like any other answer.
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
    "429": "Rate limit exceeded; retry after `Retry-After` seconds.",
}
WRITES = ("post", "put", "patch", "delete")


def _error_statuses(path: str, method: str, operation: dict) -> list[str]:
    statuses = ["401", "403", "429"]
    if method in WRITES or any(p.get("in") == "query" for p in operation.get("parameters", [])):
        statuses.append("400")
    if "{" in path:
        statuses.append("404")
    if method in WRITES:
        statuses.append("409")
    if "requestBody" in operation:
        statuses.append("413")
    return statuses


def document_errors(result: dict, generator, request, public) -> dict:
    """drf-spectacular postprocessing hook: add the error responses to every operation."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    reference = {"$ref": "#/components/schemas/Error"}
    for path, methods in result.get("paths", {}).items():
        for method, operation in methods.items():
            responses = operation.setdefault("responses", {})
            for status in _error_statuses(path, method, operation):
                responses.setdefault(
                    status,
                    {
                        "description": REASONS[status],
                        "content": {"application/json": {"schema": reference}},
                    },
                )
    return result
