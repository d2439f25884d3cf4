"""The API root lists every top-level endpoint, read from the routes (so new ones appear), and
the Swagger UI works without internet: its files come from this site."""

from __future__ import annotations

import re

import pytest
import yaml
from django.core.management import call_command


@pytest.mark.django_db
def test_the_api_root_lists_every_top_level_path_of_the_schema(api_client, tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out))
    paths = yaml.safe_load(out.read_text())["paths"]
    top_level = {p.split("/")[2] for p in paths if re.fullmatch(r"/api/[^/{}]+/", p)}
    root = api_client.get("/api/").json()
    assert top_level <= set(root), sorted(top_level - set(root))
    # What issue 15 found missing, and the docs.
    for name in ("notification-channels", "notification-deliveries", "slos", "docs", "schema"):
        assert root[name].startswith("http://testserver/api/")
    assert root["incidents"] == "http://testserver/api/incidents/"
    assert root["me"] == "http://testserver/api/me/"


@pytest.mark.django_db
def test_every_link_of_the_root_answers(client_as):
    client = client_as("admin")
    for name, url in client.get("/api/").json().items():
        assert client.get(url).status_code == 200, name


@pytest.mark.django_db
def test_the_swagger_ui_loads_nothing_from_another_site(client, admin_user):
    client.force_login(admin_user)
    html = client.get("/api/docs/").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{asset} is not served by this site"
    bundle = next(a for a in assets if a.endswith("swagger-ui-bundle.js"))
    assert "drf_spectacular_sidecar" in bundle
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html


@pytest.mark.django_db
def test_the_swagger_ui_files_are_served(live_server):
    """By the site itself (WhiteNoise in production after collectstatic, the static finders in
    development): fetched over HTTP from a live server."""
    import urllib.request

    from django.templatetags.static import static

    for name in ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css"):
        path = static(f"drf_spectacular_sidecar/swagger-ui-dist/{name}")
        with urllib.request.urlopen(live_server.url + path, timeout=10) as response:
            assert response.status == 200
            assert len(response.read()) > 10_000


def test_the_favicon_is_served(client, db):
    response = client.get("/favicon.ico")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/x-icon"
    assert response.content[:4] == b"\x00\x00\x01\x00"  # an ICO header
    assert "max-age=604800" in response["Cache-Control"]
