"""Posting the console's forms as a browser does: with the CSRF token the page carries."""

from __future__ import annotations

import re

from django.test import Client

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_token(client: Client, page: str) -> str:
    response = client.get(page)
    assert response.status_code == 200, response.status_code
    match = TOKEN.search(response.content.decode())
    assert match, f"no form with a CSRF token on {page}"
    return match.group(1)


def submit(client: Client, page: str, action: str, data: dict | None = None, **extra):
    """POST `data` to `action` with the token of `page`'s forms; the response, not followed."""
    token = csrf_token(client, page)
    return client.post(action, {**(data or {}), "csrfmiddlewaretoken": token}, **extra)


def messages_of(client: Client, page: str) -> list[str]:
    """The messages the next page view shows (and consumes)."""
    html = client.get(page).content.decode()
    return re.findall(r'<li class="[a-z ]*">([^<]*)</li>', html)
