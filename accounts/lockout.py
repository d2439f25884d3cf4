"""What a locked-out login sees (django-axes calls this): JSON for the API, a page for people."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string


def lockout_response(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    message = (
        f"Too many failed login attempts: this account is locked for {minutes} minutes "
        "from this address. Try again later or ask an admin to unlock it."
    )
    if request.path.startswith("/api/") or "json" in request.headers.get("Accept", ""):
        return JsonResponse({"message": message, "code": "locked_out"}, status=429)
    html = render_to_string("accounts/locked_out.html", {"message": message}, request=request)
    return HttpResponse(html, status=429)
