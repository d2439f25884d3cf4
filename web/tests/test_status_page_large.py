"""A status page of many services: compact uptime bars past COMPACT_BARS_AFTER services (the
same colours and the same days, a fraction of the markup), and the page sent gzip-compressed
to the clients that accept it (held compressed in the cache)."""

from __future__ import annotations

import gzip
from datetime import date, timedelta

import pytest

from web import charts
from web.charts import SVG_NS, DayUptime
from web.tests.helpers import set_status, svgs
from web.views import status as views

pytestmark = pytest.mark.usefixtures("private_cache")

DAY = date(2026, 9, 1)


def days(levels: str) -> list[DayUptime]:
    """One DayUptime per letter: g(reen) 100 %, y(ellow) 99.5 %, r(ed) 50 %, -(no data)."""
    counts = {"g": (1000, 1000), "y": (995, 1000), "r": (1, 2), "-": (0, 0)}
    return [DayUptime(DAY + timedelta(days=i), *counts[c]) for i, c in enumerate(levels)]


def test_a_compact_bar_draws_the_same_days_in_a_few_elements():
    sample = days("gggg-gyggr" * 9)
    full, compact = (
        draw(sample, label="api") for draw in (charts.uptime_bar, charts.uptime_bar_compact)
    )
    assert len(compact) < len(full) / 3
    (root,) = svgs(compact, "uptime-bar")
    green, grey = root.findall(f"{{{SVG_NS}}}path")
    assert green.get("d").count("z") == 63 and grey.get("d").count("z") == 9
    assert green.find(f"{{{SVG_NS}}}title").text == "63 days: 99.9 % up or more"
    assert grey.find(f"{{{SVG_NS}}}title").text == "9 days: no data"
    cells = root.findall(f"{{{SVG_NS}}}rect")  # the days below green keep their tooltip
    assert [c.get("class") for c in cells[:2]] == ["cell cell-yellow", "cell cell-red"]
    assert cells[0].find(f"{{{SVG_NS}}}title").text == "2026-09-07: 99.50 % up"
    # Cell n is at n × 8 in both drawings: the first yellow day is the seventh.
    assert cells[0].get("x") == "48"
    assert green.get("d").startswith("M0 0h6v28h-6zM8 0h6v28h-6z")


def test_past_the_limit_the_status_page_draws_compact_bars(client, make_service, monkeypatch):
    for n in range(3):
        set_status(make_service(name=f"Site {n}"), "up")
    few = client.get("/status/").content.decode()
    assert len(svgs(few, "uptime-bar")[0].findall(f"{{{SVG_NS}}}rect")) == 90

    monkeypatch.setattr(views, "COMPACT_BARS_AFTER", 2)
    views.cache.delete(views.STATUS_PAGE_CACHE_KEY)
    many = client.get("/status/").content.decode()
    bars = svgs(many, "uptime-bar")
    assert len(bars) == 3
    assert all(bar.findall(f"{{{SVG_NS}}}path") for bar in bars)
    assert len(many) < len(few)


def test_the_page_is_sent_compressed_to_who_accepts_gzip(client, make_service):
    set_status(make_service(name="Site"), "up")
    plain = client.get("/status/")
    packed = client.get("/status/", headers={"Accept-Encoding": "gzip, deflate, br"})
    assert "Content-Encoding" not in plain and packed["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in packed["Vary"] and "Accept-Encoding" in plain["Vary"]
    assert gzip.decompress(packed.content) == plain.content
    assert len(packed.content) < len(plain.content) / 3
    assert packed["Cache-Control"] == plain["Cache-Control"]


def test_an_expired_page_is_renewed_by_one_request_while_others_get_the_previous(
    client, make_service
):
    service = make_service(name="Site")
    set_status(service, "up")
    first = client.get("/status/").content
    expires, body = views.cache.get(views.STATUS_PAGE_CACHE_KEY)
    views.cache.set(views.STATUS_PAGE_CACHE_KEY, (expires - 3600, body), 600)  # expired
    set_status(service, "down")

    views.cache.add(f"{views.STATUS_PAGE_CACHE_KEY}:renewing", 1, 60)  # another one renews
    assert client.get("/status/").content == first  # meanwhile: the previous page
    views.cache.delete(f"{views.STATUS_PAGE_CACHE_KEY}:renewing")  # that one is done, say
    renewed = client.get("/status/").content  # this request renews it
    assert renewed != first and b"Major outage" in renewed
    assert views.cache.get(views.STATUS_PAGE_CACHE_KEY)[0] > expires - 3600
    assert views.cache.get(f"{views.STATUS_PAGE_CACHE_KEY}:renewing") is None
    assert client.get("/status/").content == renewed


def test_beat_renders_the_page_ahead_so_visitors_never_wait_for_a_render(
    client, make_service, django_assert_num_queries
):
    from noc.beat import ENTRIES
    from web import tasks

    entry = ENTRIES["web: render the status page"]
    assert entry.task == tasks.status_page_refresh.name == "web.status_page_refresh"
    assert entry.every_seconds < views.STATUS_PAGE_CACHE_SECONDS  # renewed before it expires

    service = make_service(name="Site")
    set_status(service, "up")
    assert tasks.status_page_refresh() == 0  # nobody has looked at the page: nothing rendered
    assert views.cache.get(views.STATUS_PAGE_CACHE_KEY) is None
    client.get("/status/")  # a visitor: the page is rendered ahead from now on
    set_status(service, "degraded")
    assert tasks.status_page_refresh() > 0  # what the worker runs
    with django_assert_num_queries(0):
        first = client.get("/status/").content
    assert b"Degraded performance" in first and b"Site" in first  # the worker's render
    set_status(service, "down")
    tasks.status_page_refresh()
    with django_assert_num_queries(0):
        assert b"Major outage" in client.get("/status/").content

    views.cache.delete(views.STATUS_PAGE_VIEWED_KEY)  # no visit for STATUS_PAGE_VIEWED_SECONDS
    assert tasks.status_page_refresh() == 0
