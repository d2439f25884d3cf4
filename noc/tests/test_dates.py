"""Date-times the API reads: a UTC offset PostgreSQL cannot take, or an instant outside the
calendar, is a 400 naming the parameter on every filter and field, never a 500."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import serializers
from rest_framework.test import APIClient

from accounts.choices import Role
from noc.api.dates import DateTimeField, IsoDateTimeFilter
from noc.api.filters import FilterBackend, FilterSet
from noc.api.serializers import ModelSerializer

pytestmark = pytest.mark.django_db

OUT_OF_RANGE = ["2026-01-02T00:00:00+23:59", "2026-01-02T00:00:00-16:00"]
OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"]
ACCEPTED = ["2026-01-02T00:00:00+15:59", "2026-01-02T00:00:00-15:59", "2026-01-02T00:00:00Z"]


@pytest.fixture
def api(make_user, make_service) -> APIClient:
    from slos.actions import slo_create

    service = make_service(id="dated")
    slo_create(
        actor=None, id="dated-slo", name="D", service=service, sli_type="availability", target="99"
    )
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(make_user(Role.ADMIN))
    return client


FILTERS = [
    ("/api/incidents/", "opened_after"),
    ("/api/incidents/", "opened_before"),
    ("/api/incidents/stats/", "from"),
    ("/api/incidents/stats/", "to"),
    ("/api/api-keys/", "revoked_at"),
    ("/api/audit-events/", "since"),
    ("/api/audit-events/", "until"),
    ("/api/services/dated/results/", "from"),
    ("/api/services/dated/results/", "to"),
    ("/api/slos/dated-slo/history/", "from"),
    ("/api/slos/dated-slo/history/", "to"),
]


@pytest.mark.parametrize(("url", "param"), FILTERS)
@pytest.mark.parametrize("value", OUT_OF_RANGE + OVERFLOWING)
def test_a_date_filter_out_of_range_is_a_400_naming_it(api, url, param, value):
    response = api.get(f"{url}?{param}={quote(value)}")

    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert param in body["errors"], body
    assert body["code"] == "invalid"


@pytest.mark.parametrize(("url", "param"), FILTERS)
@pytest.mark.parametrize("value", ACCEPTED)
def test_a_date_filter_in_range_is_answered(api, url, param, value):
    response = api.get(f"{url}?{param}={quote(value)}")

    assert response.status_code == 200, (response.status_code, response.content[:300])


def test_an_offset_of_23_59_names_the_allowed_range(api):
    response = api.get("/api/incidents/?opened_after=" + quote("2026-01-02T00:00:00+23:59"))

    message = response.json()["errors"]["opened_after"][0]
    assert message == "The UTC offset +23:59 is out of range: offsets run from -15:59 to +15:59."


@pytest.mark.parametrize("value", OUT_OF_RANGE + OVERFLOWING)
def test_a_written_date_out_of_range_is_a_400_and_nothing_is_saved(api, value):
    from services.models import MaintenanceWindow

    response = api.post(
        "/api/maintenance-windows/",
        {"name": "w", "services": ["dated"], "starts_at": value, "ends_at": "9999-12-31T00:00Z"},
        format="json",
    )

    assert response.status_code == 400, response.content
    assert "starts_at" in response.json()["errors"]
    assert not MaintenanceWindow.objects.exists()


def test_a_written_date_is_kept_as_the_same_instant_in_utc(api):
    response = api.post(
        "/api/maintenance-windows/",
        {
            "name": "w",
            "services": ["dated"],
            "starts_at": "2026-01-02T00:00:00+15:30",
            "ends_at": "2026-01-02T10:00:00-15:30",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert response.json()["starts_at"] == "2026-01-01T08:30:00Z"
    assert response.json()["ends_at"] == "2026-01-03T01:30:00Z"


def test_a_filter_compares_the_same_instant_in_utc(api, make_service):
    from incidents.actions import incident_create_manual
    from incidents.models import Incident

    incident = incident_create_manual(actor=None, service=make_service(), title="x", severity="low")
    Incident.objects.filter(pk=incident.pk).update(detected_at=datetime(2026, 1, 1, 9, tzinfo=UTC))

    def count(after: str) -> int:
        return api.get("/api/incidents/?opened_after=" + quote(after)).json()["count"]

    assert count("2026-01-02T00:00:00+15:00") == 1  # 2026-01-01T09:00Z
    assert count("2026-01-02T00:00:00+14:59") == 0  # 09:01Z


# --- every date the API reads goes through noc.api.dates -----------------------------------


def _api_views(patterns=None):
    for pattern in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _api_views(pattern.url_patterns)
        elif isinstance(pattern, URLPattern) and hasattr(pattern.callback, "cls"):
            yield pattern.callback.cls


def test_every_filterset_parses_dates_through_the_project_filter():
    assert settings.REST_FRAMEWORK["DEFAULT_FILTER_BACKENDS"][0] == (
        f"{FilterBackend.__module__}.{FilterBackend.__name__}"
    )
    filtersets = {
        view.filterset_class for view in _api_views() if getattr(view, "filterset_class", None)
    }
    assert len(filtersets) >= 6
    for filterset in filtersets:
        assert issubclass(filterset, FilterSet), filterset
        for name, declared in filterset.base_filters.items():
            if "DateTime" in type(declared).__name__:
                assert isinstance(declared, IsoDateTimeFilter), (filterset, name)


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_model_serializer_that_writes_a_date_uses_the_project_field():
    """Model serializers generate their fields: one with a writable date-time must map it to
    noc.api.dates (declared fields of plain serializers are covered by the tests above)."""
    import services.api.serializers

    assert get_resolver().url_patterns  # imports every view, and so every serializer
    writers = []
    for cls in set(_subclasses(serializers.ModelSerializer)):
        if cls.__module__.split(".")[0] not in ("accounts", "services", "incidents", "slos"):
            continue
        for name, field in cls().fields.items():
            if isinstance(field, serializers.DateTimeField) and not field.read_only:
                writers.append(cls.__name__)
                assert isinstance(field, DateTimeField), f"{cls.__name__}.{name}"
    assert "MaintenanceWindowSerializer" in writers
    assert issubclass(services.api.serializers.MaintenanceWindowSerializer, ModelSerializer)


# --- outside the API: the database layer sends such an offset as the same instant in UTC -------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/incidents/incident/?detected_at__gte=",
        "/admin/accounts/apikey/?revoked_at__gte=",
        "/admin/accounts/auditevent/?time__gte=",
        "/admin/axes/accessattempt/?attempt_time__gte=",
    ],
)
def test_admin_date_filters_with_any_offset_are_answered(client, make_user, url):
    client.force_login(make_user(Role.ADMIN))

    response = client.get(url + quote("2026-01-02T00:00:00+23:59"))

    assert response.status_code == 200


def test_the_orm_compares_an_offset_postgresql_cannot_parse_as_its_instant(make_service):
    from datetime import timedelta, timezone

    from incidents.actions import incident_create_manual
    from incidents.models import Incident

    incident = incident_create_manual(actor=None, service=make_service(), title="x", severity="low")
    Incident.objects.filter(pk=incident.pk).update(
        detected_at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    )
    far_east = timezone(timedelta(hours=23, minutes=59))

    def after(moment: datetime) -> bool:
        return Incident.objects.filter(pk=incident.pk, detected_at__gte=moment).exists()

    assert after(datetime(2026, 1, 2, 0, 0, tzinfo=far_east))  # 2026-01-01T00:01Z
    assert not after(datetime(2026, 1, 2, 0, 1, tzinfo=far_east))  # 00:02Z
