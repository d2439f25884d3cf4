"""Middleware of the project that is not about the request context."""

from __future__ import annotations

import logging
from collections.abc import Callable
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse

logger = logging.getLogger(__name__)


class RejectNulMiddleware:
    """A NUL (%00) in the path or the query string is refused with a 400 before any view runs:
    PostgreSQL cannot compare or store it, so it would end as a 500 in whichever filter, search
    or lookup received it. (Request bodies are checked by the parsers in noc.api.parsers.)"""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in request.path or "\x00" in unquote(query):
            message = "NUL characters (%00) are not accepted in the URL."
            if request.path.startswith("/api/"):
                body = {"message": message, "code": "invalid", "errors": {}}
                return JsonResponse(body, status=400)
            return HttpResponseBadRequest(message, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class DependencyUnavailableMiddleware:
    """A view that needs PostgreSQL, Redis or the broker while it is away answers 503 with a
    Retry-After and a message naming what is missing (JSON under /api/), not a 500: the stack
    degrades while a dependency is gone and serves again by itself when it is back."""

    RETRY_AFTER_SECONDS = 5

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        missing = unavailable_dependency(exception)
        if missing is None:
            return None
        logger.warning("%s %s: %s unavailable (%s)", request.method, request.path, missing,
                       type(exception).__name__)  # fmt: skip
        message = f"{missing} is unavailable; try again in a few seconds."
        if request.path.startswith("/api/"):
            body = {"message": message, "code": "unavailable", "errors": {}}
            response: HttpResponse = JsonResponse(body, status=503)
        else:
            response = HttpResponse(message, status=503, content_type="text/plain; charset=utf-8")
        response["Retry-After"] = str(self.RETRY_AFTER_SECONDS)
        return response


def unavailable_dependency(exception: Exception) -> str | None:
    """The name of the dependency whose absence `exception` reports, or None for anything else
    (a bug stays a 500)."""
    import kombu.exceptions
    import redis.exceptions
    from django.db import InterfaceError, OperationalError

    if isinstance(exception, OperationalError | InterfaceError):
        return "The database (PostgreSQL)"
    if isinstance(exception, redis.exceptions.ConnectionError | redis.exceptions.TimeoutError):
        return "Redis"
    if isinstance(exception, kombu.exceptions.OperationalError):
        return "The task broker"
    return None
