"""Push (heartbeat) pings: /ping/<token>[/fail|/start], as in Healthchecks.io.

No login and no CSRF: the unguessable token in the URL is the credential, and cron jobs call
these with curl. Kept lean because a fleet of jobs pings often: one transaction, no session or
serializer work.
"""

from __future__ import annotations

from uuid import UUID

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from services.actions import UnknownPingToken, push_ping_record

OUTCOMES = ("success", "fail", "start")
BODY_CHARS = 200
# Enough bytes for BODY_CHARS characters of UTF-8; the rest of a large body is never read.
BODY_BYTES = BODY_CHARS * 4


def _body(request: HttpRequest) -> str:
    if request.method != "POST":
        return ""
    return request.read(BODY_BYTES).decode("utf-8", errors="replace")[:BODY_CHARS]


def _text(content: str, status: int = 200) -> HttpResponse:
    return HttpResponse(content, status=status, content_type="text/plain; charset=utf-8")


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def ping(request: HttpRequest, token: UUID, outcome: str = "success") -> HttpResponse:
    if outcome not in OUTCOMES:
        return _text("not found", 404)
    try:
        # The action is one transaction: the ping time and its result are recorded together.
        push_ping_record(token=token, outcome=outcome, body=_body(request))
    except UnknownPingToken:
        return _text("not found", 404)
    return _text("OK")
