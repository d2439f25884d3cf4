"""The `path` filter gives what `{% url %}` gives for the routes the dashboard links, for any
id, without resolving the route each time."""

from __future__ import annotations

import pytest
from django.urls import NoReverseMatch, reverse

from web.templatetags.console import path


@pytest.mark.parametrize(
    ("name", "value"),
    [("web:service", "api-eu-1"), ("web:service", "Svc_2"), ("web:slo", "checkout-availability"),
     ("web:incident", 7), ("web:incident", 123456), ("web:service", "9876543210")],
)  # fmt: skip
def test_the_path_filter_is_the_url_tag(name, value):
    assert path(value, name) == reverse(name, args=[value])


def test_a_route_of_another_shape_is_refused():
    with pytest.raises(NoReverseMatch):
        path(1, "web:home")
