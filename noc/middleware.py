"""Middleware of the project that is not about the request context."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import unquote

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse


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
