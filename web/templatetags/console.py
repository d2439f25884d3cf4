"""Template filters of the console: numbers rounded for people (noc.formatting)."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any
from urllib.parse import quote

from django import template
from django.urls import NoReverseMatch, get_script_prefix, reverse

from noc import formatting

register = template.Library()


@register.filter
def dictget(mapping: dict, key: Any) -> Any:
    return mapping.get(key) if mapping else None


@register.filter
def sli(value: float | None) -> str:
    return formatting.sli_label(value)


@register.filter
def percent(value: float | None) -> str:
    return formatting.optional_percent(value)


@register.filter
def budget_minutes(value: float | None) -> str:
    return formatting.budget_minutes_label(value)


@register.filter
def budget_percent(value: float | None) -> str:
    return formatting.budget_percent_label(value)


@register.filter
def burn(value: float | None) -> str:
    return formatting.burn_label(value)


@register.filter
def measure(value: float | None) -> str:
    return formatting.measure_label(value)


@register.filter
def ms(value: float | None) -> str:
    return formatting.ms_label(value)


@register.filter
def minutes(value: float | None) -> str:
    return formatting.duration_label(value)


# A sample argument per converter of the routes `path` serves: reverse() once with it, then
# the URL of any id is a string format (the dashboard links hundreds of rows: reverse() for
# each was a fifth of its time).
_SAMPLE = "sample-0123456789"
_SAMPLE_INT = 9876543210


@functools.cache
def _route_format(name: str, prefix: str) -> str:
    for sample in (_SAMPLE, _SAMPLE_INT):
        try:
            url = reverse(name, args=[sample])
        except NoReverseMatch:
            continue
        return url.replace("{", "{{").replace("}", "}}").replace(str(sample), "{}")
    raise NoReverseMatch(f"{name} takes neither a slug nor an int")


def path_format(name: str) -> str:
    """The route's URL as a format string with one `{}` for its quoted argument."""
    return _route_format(name, get_script_prefix())


@register.filter
def path(value: Any, name: str) -> str:
    """`{{ service.pk|path:'web:service' }}`: what `{% url 'web:service' service.pk %}`
    gives, for a route of one slug or int argument, without resolving it each time."""
    return path_format(name).format(quote(str(value), safe=""))


@register.filter
def iso_time(value: str | None) -> str:
    """A time stored as ISO 8601 text (an event's evidence) as the pages print times:
    2026-12-05 06:01:40 UTC, not 2026-12-05T06:01:40.588787+00:00."""
    from datetime import UTC

    from django.utils.dateparse import parse_datetime

    try:
        moment = parse_datetime(value or "")
    except ValueError:
        moment = None
    if moment is None:
        return value or formatting.EM_DASH
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


@register.filter
def span(value: timedelta | None) -> str:
    return formatting.EM_DASH if value is None else formatting.span_label(value)


@register.inclusion_tag("web/parts/incident_actions.html", takes_context=True)
def incident_actions(context: template.Context, incident) -> dict[str, Any]:
    """The incident page's actions, for another page (the admin's change form): the same
    forms, posting to the console's actions, coming back to the page they were shown on."""
    # Imported here: the views import DRF, which builds the template engine, which loads this
    # library: at the module's top that cycle would cache it half-defined.
    from accounts.models import User
    from web.views.incidents import actions_context, allowed_actions

    request = context["request"]
    allowed = allowed_actions(request.user)
    people = (
        list(User.objects.filter(is_active=True).order_by("username")) if allowed["assign"] else []
    )
    return {
        **actions_context(incident, allowed, people, next_url=request.get_full_path()),
        "csrf_token": context.get("csrf_token"),
    }
