"""API rate limits: per API key (or signed-in user) and per client address, counted in the
Redis cache, a 429 in the JSON error shape with Retry-After; pings and ingestion apart."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured
from rest_framework.test import APIClient

from accounts.actions import api_key_create
from accounts.choices import Role
from noc.api.rates import parse_rate
from noc.settings import _rate

pytestmark = pytest.mark.django_db


@pytest.fixture
def rates(settings):
    def set_rates(key: str | None = None, address: str | None = None, ingest: str | None = None):
        settings.NOC_API_THROTTLE_RATES = {"key": key, "address": address, "ingest": ingest}

    return set_rates


@pytest.fixture
def key_client(make_user):
    """key_client(address=…) -> a client using a fresh API key of a fresh viewer."""

    def make(address: str = "192.0.2.10", user=None) -> APIClient:
        user = user or make_user(Role.VIEWER)
        _, key = api_key_create(actor=None, user=user, name="throttled")
        client = APIClient(REMOTE_ADDR=address)
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    return make


def statuses(client: APIClient, n: int, url: str = "/api/me/") -> list[int]:
    return [client.get(url).status_code for _ in range(n)]


def test_a_key_over_its_rate_gets_a_429_with_retry_after(rates, key_client):
    rates(key="3/minute")
    client = key_client()

    assert statuses(client, 3) == [200, 200, 200]
    response = client.get("/api/services/")

    assert response.status_code == 429
    body = response.json()
    assert body["code"] == "throttled"
    assert "seconds" in body["message"]
    assert 1 <= int(response["Retry-After"]) <= 60


def test_each_key_has_its_own_count(rates, key_client, make_user):
    rates(key="2/minute")
    user = make_user(Role.VIEWER)
    first, second = key_client(user=user), key_client(user=user)

    assert statuses(first, 3) == [200, 200, 429]
    assert statuses(second, 2) == [200, 200]


def test_a_signed_in_person_counts_per_user(rates, make_user):
    rates(key="2/minute")
    user = make_user(Role.VIEWER)
    browser = APIClient()
    browser.force_login(user)
    other_tab = APIClient()
    other_tab.force_login(user)

    assert statuses(browser, 2) == [200, 200]
    assert statuses(other_tab, 1) == [429]


def test_an_address_is_limited_across_keys(rates, key_client):
    rates(address="3/minute")
    one, two = key_client("198.51.100.7"), key_client("198.51.100.7")
    elsewhere = key_client("198.51.100.8")

    assert statuses(one, 2) + statuses(two, 2) == [200, 200, 200, 429]
    assert statuses(elsewhere, 3) == [200, 200, 200]


def test_anonymous_callers_are_limited_by_address_where_they_are_allowed(rates):
    rates(address="2/minute")
    client = APIClient(REMOTE_ADDR="203.0.113.5")

    assert statuses(client, 3, "/api/") == [200, 200, 429]


def test_no_limit_when_the_rates_are_off(rates, key_client):
    rates()
    assert set(statuses(key_client(), 30)) == {200}


def test_pings_are_never_throttled(rates, make_service, client):
    rates(key="1/minute", address="1/minute")
    push = make_service(id="hot", kind="push", url="")

    codes = [client.get(f"/ping/{push.ping_token}").status_code for _ in range(5)]

    assert codes == [200] * 5


def test_metric_ingestion_has_its_own_limit_or_none(rates, make_application):
    from observability.tests.test_api import bearer, points, send

    _, key = make_application("shop")
    client = bearer(key)

    def codes(n: int) -> list[int]:
        return [send(client, {"points": points(1)}).status_code for _ in range(n)]

    rates(key="1/minute", address="1/minute", ingest=None)
    assert codes(5) == [200] * 5  # the API's limits do not apply, ingestion is off
    rates(key="1/minute", address="1/minute", ingest="3/minute")
    assert codes(4) == [200, 200, 200, 429]


def test_a_cache_that_is_down_lets_requests_through(rates, key_client, settings, tmp_path):
    rates(key="1/minute", address="1/minute")
    client = key_client()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"unix://{tmp_path}/no-redis-here.sock",
        }
    }

    assert statuses(client, 3) == [200, 200, 200]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("600/minute", (600, 60)), ("20/s", (20, 1)), ("5/hour", (5, 3600)), ("1/day", (1, 86400)),
     ("off", None), ("", None), (None, None)],
)  # fmt: skip
def test_rates_are_parsed(text, parsed):
    assert parse_rate(text) == parsed


@pytest.mark.parametrize("text", ["lots", "0/minute", "10/fortnight", "-1/s", "10"])
def test_a_malformed_rate_stops_the_start_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv("NOC_API_RATE_PER_KEY", text)

    with pytest.raises(ImproperlyConfigured, match=r"NOC_API_RATE_PER_KEY: .* is not a rate"):
        _rate("NOC_API_RATE_PER_KEY", "600/minute")
