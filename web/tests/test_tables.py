"""The dashboard's rows built in Python print times as the template filters they replace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.template.defaultfilters import timesince_filter
from django.utils import timezone, translation

from web.tables import Clock, whole_ms

NOW = datetime(2026, 3, 1, 0, 0, 30, 123456, tzinfo=UTC)


@pytest.mark.parametrize(
    "before",
    [
        timedelta(seconds=-90),  # a clock ahead: 0 minutes
        timedelta(0),
        timedelta(seconds=59.9),
        timedelta(seconds=60),
        timedelta(minutes=61, seconds=5),
        timedelta(hours=23, minutes=59, seconds=59),
        timedelta(days=6, hours=5),
        timedelta(days=27, hours=23, minutes=59),  # over a month's end (February)
        timedelta(days=28),
        timedelta(days=45, minutes=3),
        timedelta(days=400),
    ],
)
@pytest.mark.parametrize("now", [NOW, NOW + timedelta(days=30, hours=7), NOW + timedelta(days=305)])
def test_ago_is_what_the_timesince_filter_prints(now, before):
    assert Clock.current(now).ago(now - before) == timesince_filter(now - before, now)


def test_ago_follows_the_active_language():
    with translation.override("de"):
        clock = Clock.current(NOW)
        assert clock.ago(NOW - timedelta(minutes=3)) == timesince_filter(
            NOW - timedelta(minutes=3), NOW
        )
    assert Clock.current(NOW).ago(None) == ""


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York"])
def test_moment_is_what_the_date_filter_prints(zone):
    template = Template("{{ value|date:'Y-m-d H:i:s T' }}")  # in the current time zone
    with timezone.override(zone):
        clock = Clock.current(NOW)
        for value in (NOW, NOW + timedelta(days=120, seconds=7.5)):
            assert clock.moment(value) == template.render(Context({"value": value}))
    assert Clock.current(NOW).moment(None) == ""


@pytest.mark.parametrize(("ms", "shown"), [(123.4, "123"), (0.5, "1"), (2.5, "3"), (99.49, "99")])
def test_response_times_are_rounded_half_up_as_floatformat_does(ms, shown):
    assert whole_ms(ms) == shown
