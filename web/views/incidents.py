"""An incident's page (/incidents/<id>/) and its lifecycle actions.

Each action is a CSRF-protected POST that needs the role its API endpoint needs, validates
its input with the API's own serializer and calls the same incidents.actions function, so the
timeline event and the audit row are exactly those of the API. The answer redirects back to
the page (post/redirect/get) with what happened, or why it was refused, as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from rest_framework import serializers

from incidents import actions
from incidents.api import serializers as api
from incidents.choices import IncidentStatus, PublicPhase
from incidents.models import Incident
from web.access import INCIDENT_ACTIONS, may, reader_required, role_required
from web.queries import incident as queries
from web.queries import public

# Statuses offered by the "change status" form; resolving and closing have their own forms.
PLAIN_STATUSES = (IncidentStatus.INVESTIGATING, IncidentStatus.IN_PROGRESS)


def _get(pk: int) -> Incident:
    try:
        return queries.incident_detail(pk)
    except Incident.DoesNotExist:
        raise Http404(f"No incident #{pk}.") from None


@reader_required
def incident_detail(request: HttpRequest, pk: int) -> HttpResponse:
    incident = _get(pk)
    allowed = allowed_actions(request.user)
    page = queries.incident_page(incident, with_assignees=allowed["assign"])
    context = {
        "page": page,
        "incident": incident,
        "events": list(incident.events.all()),
        "evidence_limit": queries.EVIDENCE_LIMIT,
        "phases": PublicPhase.choices,
        "public_title_shown": incident.public_title
        or public.public_wording(incident.source, incident.service.name),
        "service_public": public.public_services().filter(pk=incident.service_id).exists(),
        **actions_context(incident, allowed, page.assignees),
    }
    return render(request, "web/incident.html", context)


def allowed_actions(user) -> dict[str, bool]:
    return {name: may(user, role) for name, role in INCIDENT_ACTIONS.items()}


def actions_context(
    incident: Incident, allowed: dict[str, bool], assignees: list, next_url: str = ""
) -> dict[str, Any]:
    """What web/parts/incident_actions.html needs: which actions the reader may take (`may`,
    their role) and which the incident's state allows (`can`). The admin's change form shows
    the same part, with `next` bringing the reader back there."""
    next_statuses = [
        (status, IncidentStatus(status).label)
        for status in incident.allowed_next()
        if status in PLAIN_STATUSES
    ]
    return {
        "incident": incident,
        "may": allowed,
        "can": {
            "acknowledge": incident.is_active and incident.acknowledged_at is None,
            "assign": incident.status != IncidentStatus.CLOSED,
            "change_status": bool(next_statuses),
            "comment": True,
            "resolve": incident.can_become(IncidentStatus.RESOLVED),
            "close": incident.can_become(IncidentStatus.CLOSED),
        },
        "next_statuses": next_statuses,
        "assignees": assignees,
        "comment_max": settings.INCIDENT_COMMENT_MAX_CHARS,
        "next": next_url,
    }


# --- actions ----------------------------------------------------------------------------------


def _act(
    request: HttpRequest,
    pk: int,
    done: str,
    run: Callable[[Incident, dict[str, Any]], object],
    serializer: type[serializers.Serializer] | None = None,
) -> HttpResponse:
    """Validate with the API's serializer, run the action, report, go back to the page."""
    incident = _get(pk)
    back = redirect(_next(request) or reverse("web:incident", args=[pk]))
    data: dict[str, Any] = {}
    if serializer is not None:
        checked = serializer(data=_form(request))
        if not checked.is_valid():
            messages.error(request, _errors(checked.errors))
            return back
        data = dict(checked.validated_data)
    try:
        run(incident, data)
    except actions.TransitionNotAllowed as refused:
        allowed = ", ".join(refused.allowed) or "none"
        messages.error(request, f"{refused} (allowed next: {allowed})")
    except actions.AlreadyActive as refused:
        messages.error(request, str(refused))
    except ValidationError as refused:
        messages.error(request, "; ".join(refused.messages))
    else:
        messages.success(request, done)
    return back


def _next(request: HttpRequest) -> str:
    """Where to go back to when the form says (the admin's change form): a path on this
    site only."""
    target = request.POST.get("next", "")
    safe = url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()})
    return target if safe and target.startswith("/") else ""


def _form(request: HttpRequest) -> dict[str, Any]:
    form = {
        key: request.POST.get(key)
        for key in request.POST
        if key not in ("csrfmiddlewaretoken", "next")
    }
    if form.get("assignee") == "":
        form["assignee"] = None  # the form's "nobody"
    return form


def _errors(errors: dict[str, Any]) -> str:
    return "; ".join(
        f"{field}: {' '.join(map(str, problems))}" for field, problems in errors.items()
    )


@require_POST
@role_required(INCIDENT_ACTIONS["acknowledge"])
def incident_acknowledge(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request, pk, "Acknowledged.",
        lambda incident, _: actions.incident_acknowledge(incident=incident, actor=request.user),
    )  # fmt: skip


@require_POST
@role_required(INCIDENT_ACTIONS["assign"])
def incident_assign(request: HttpRequest, pk: int) -> HttpResponse:
    def run(incident: Incident, data: dict[str, Any]) -> object:
        return actions.incident_assign(incident=incident, actor=request.user, **data)

    return _act(request, pk, "Assignment saved.", run, api.AssignSerializer)


@require_POST
@role_required(INCIDENT_ACTIONS["change_status"])
def incident_change_status(request: HttpRequest, pk: int) -> HttpResponse:
    def run(incident: Incident, data: dict[str, Any]) -> object:
        return actions.incident_change_status(incident=incident, actor=request.user, **data)

    return _act(request, pk, "Status changed.", run, api.StatusChangeSerializer)


@require_POST
@role_required(INCIDENT_ACTIONS["comment"])
def incident_comment(request: HttpRequest, pk: int) -> HttpResponse:
    def run(incident: Incident, data: dict[str, Any]) -> object:
        return actions.incident_comment(incident=incident, actor=request.user, **data)

    return _act(request, pk, "Comment added.", run, api.CommentSerializer)


@require_POST
@role_required(INCIDENT_ACTIONS["resolve"])
def incident_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    def run(incident: Incident, data: dict[str, Any]) -> object:
        return actions.incident_resolve(incident=incident, actor=request.user, **data)

    return _act(request, pk, "Resolved.", run, api.ResolveSerializer)


@require_POST
@role_required(INCIDENT_ACTIONS["publish"])
def incident_publish(request: HttpRequest, pk: int) -> HttpResponse:
    """An update for the public: the status page and its feed show it (and the public title,
    when given) within their 30-second cache."""

    def run(incident: Incident, data: dict[str, Any]) -> object:
        return actions.incident_publish(incident=incident, actor=request.user, **data)

    return _act(request, pk, "Published on the status page.", run, api.PublishSerializer)


@require_POST
@role_required(INCIDENT_ACTIONS["close"])
def incident_close(request: HttpRequest, pk: int) -> HttpResponse:
    return _act(
        request, pk, "Closed.",
        lambda incident, _: actions.incident_close(incident=incident, actor=request.user),
    )  # fmt: skip
