"""Ping URLs take their token in any letter case: UUIDs are case-insensitive (RFC 9562).

The rule lives in the URL converter (noc/converters.py), so it holds whatever view answers;
one test goes through a real HTTP server on the project's WSGI entry point."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from django.db import connections
from django.urls import reverse

from services.models import CheckResult, Service


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def push(make_service) -> Service:
    return make_service(id="cased", kind="push", url="")


def statuses(service: Service) -> list[str]:
    return list(
        CheckResult.objects.filter(service_id=service.id)
        .order_by("time")
        .values_list("status", flat=True)
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", [str.upper, lambda t: t[:18].upper() + t[18:]], ids=["upper", "mixed"]
)
def test_an_uppercase_token_is_the_same_ping(client, push, case):
    token = case(str(push.ping_token))

    assert client.get(f"/ping/{token}/start").status_code == 200
    assert client.get(f"/ping/{token}").status_code == 200
    assert client.post(f"/ping/{token}/fail").status_code == 200
    assert statuses(push) == ["up", "down"]


@pytest.mark.django_db
def test_an_unknown_or_malformed_token_is_still_a_404(client, push):
    assert client.get("/ping/6F9619FF-8B86-D011-B42D-00CF4FC964FF").status_code == 404
    assert client.get("/ping/6G9619FF-8B86-D011-B42D-00CF4FC964FF").status_code == 404
    assert client.get(f"/ping/{str(push.ping_token).replace('-', '')}").status_code == 404


@pytest.mark.django_db
def test_ping_urls_are_reversed_in_lowercase(push):
    upper = str(push.ping_token).upper()
    assert reverse("ping", kwargs={"token": upper}) == f"/ping/{push.ping_token}"


@pytest.mark.django_db(transaction=True)
def test_an_uppercase_token_pings_through_a_real_http_server(push):
    from noc.wsgi import application

    server = make_server("127.0.0.1", 0, application, handler_class=QuietHandler)

    def serve() -> None:
        try:
            server.serve_forever(poll_interval=0.05)
        finally:
            connections.close_all()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}/ping/"
    try:
        with urllib.request.urlopen(base + str(push.ping_token).upper(), timeout=10) as response:
            assert (response.status, response.read()) == (200, b"OK")
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "6F9619FF-8B86-D011-B42D-00CF4FC964FF", timeout=10)
        assert missing.value.code == 404
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
    assert statuses(push) == ["up"]
