"""The every-minute evaluation keeps the sums of completed hours between runs (slos/sli.py,
slos_slisums): each reading must equal a full recomputation from the rollups, whatever happened
in between (minutes passing, the window sliding past an hour, late results for a past hour,
SLOs edited or disabled, a clock going back), and the kept sums must actually be used."""

from __future__ import annotations

from dataclasses import astuple
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.rollups import ROLLUPS, is_native, mark_dirty, refresh
from services.models import CheckResult
from services.tests.fixtures import ensure_partitions, refresh_rollups
from services.timeseries import (
    CHECK_RESULTS,
    CHECK_ROLLUP_10MIN,
    CHECK_ROLLUP_DAILY,
    ROLLUP_HOURLY_TABLE,
    ROLLUP_TABLE,
)
from slos import actions, sli
from slos.models import SLO, SLIMinuteSums, SLISums

END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)  # the history ends here
DAYS = 32
T1 = END - timedelta(minutes=70)  # hh:50 two hours before END
T2 = T1 + timedelta(minutes=1)  # the same hour
T3 = T1 + timedelta(minutes=15)  # the next hour: every kept range slides by an hour
T4 = END - timedelta(minutes=1)
MINUTE_TIMES = [
    T1 + timedelta(minutes=k) for k in (0, 1, 3, 6, 9, 10, 11, 17, 24, 31, 38, 45, 52, 60, 61)
]

# One minute row per service and minute, pseudo-random but repeatable: 0.2 % without data,
# 0.3 % down, 1 % degraded, response times 0–600 ms.
MINUTES = """
INSERT INTO services_checkrollup (bucket, service_id, n_up, n_degraded, n_down, n_maintenance,
    rt_count, rt_sum, rt_min, rt_max, le_50, le_100, le_250, le_500, le_1000, le_2500, le_5000,
    le_10000)
SELECT m, s, (h >= 15)::int, (h >= 5 AND h < 15)::int, (h < 5)::int, 0, (h >= 5)::int,
       rt, rt, rt, (h >= 5 AND rt <= 50)::int, (h >= 5 AND rt <= 100)::int,
       (h >= 5 AND rt <= 250)::int, (h >= 5 AND rt <= 500)::int, (h >= 5)::int, (h >= 5)::int,
       (h >= 5)::int, (h >= 5)::int
FROM unnest(%(services)s::varchar[]) AS s,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS m,
     LATERAL (SELECT abs(hashtext(s || m::text)) %% 1000 AS h,
                     (abs(hashtext(m::text || s)) %% 600)::float8 AS rt) AS x
WHERE h >= 2
"""


@pytest.fixture
def fleet(make_service):
    """Four services with SLOs of every kind the hourly rollup serves, and 32 days of history:
    minute rows, and the hourly rollup built from them by its own refresh."""
    if not is_native(ROLLUPS["services_checkrollup"]):
        pytest.skip("kept sums are for the native rollups (continuous aggregates here)")
    services = [make_service() for _ in range(4)]
    a, b, c, d = services
    make = actions.slo_create
    make(actor=None, id="a-30d", name="a", service=a, sli_type="availability", target="99.9",
         window="30d")  # fmt: skip
    make(actor=None, id="a-1h", name="a 1h", service=a, sli_type="availability", target="99",
         window="1h")  # fmt: skip
    make(actor=None, id="b-7d", name="b", service=b, sli_type="latency", target="99",
         window="7d", latency_threshold_ms=250)  # fmt: skip
    make(actor=None, id="c-24h", name="c", service=c, sli_type="error_rate", target="0.5",
         window="24h")  # fmt: skip
    make(actor=None, id="d-month", name="d", service=d, sli_type="availability",
         target="99.5", window="month", budgeting_method="timeslices")  # fmt: skip
    make(actor=None, id="d-kolkata", name="d in", service=d, sli_type="availability",
         target="99.9", window="month", time_zone="Asia/Kolkata")  # fmt: skip
    make(actor=None, id="d-90d", name="d 90", service=d, sli_type="availability",
         target="99.9", window="90d")  # fmt: skip
    start = END - timedelta(days=DAYS)
    partitions.ensure(ROLLUP_TABLE, start, END + timedelta(hours=1))
    partitions.ensure(ROLLUP_HOURLY_TABLE, start, END + timedelta(hours=1))
    with connection.cursor() as cursor:
        cursor.execute(MINUTES, {"services": [s.id for s in services], "start": start, "end": END})
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup", defaults={"upto": END, "dirty_since": None}
    )
    RollupWatermark.objects.update_or_create(
        name="services_checkrollup_hourly", defaults={"upto": start, "dirty_since": None}
    )
    refresh(ROLLUPS["services_checkrollup_hourly"], now=END)
    for name in (DAILY, TEN_MINUTES):
        if name in ROLLUPS and is_native(ROLLUPS[name]):
            refresh_until_current(name, END)
    return services


def rolled_up(start: datetime) -> None:
    """Minute rows written straight into the per-minute rollup from `start` on (more services'
    history) rolled up as the per-minute refresh would have them: the rollups built on it
    marked dirty from there, then refreshed until current (the daily one after the hourly)."""
    built_on_minutes = tuple(
        name for name, rollup in ROLLUPS.items() if rollup.source == "services_checkrollup"
    )
    mark_dirty(built_on_minutes, start)
    for name in ROLLUPS:
        if name.startswith("services_checkrollup_") and is_native(ROLLUPS[name]):
            refresh_until_current(name, END)


def read(now: datetime, *, keep: bool) -> dict[str, sli.Readings]:
    targets = actions.sli_targets(list(SLO.objects.filter(enabled=True)), now)
    if not keep:
        return sli.read(targets, now)
    with transaction.atomic():  # as slos_evaluate reads
        return sli.read(targets, now, keep=True)


FAMILY = {sli.KEPT_MARK: "hours", sli.KEPT_MINUTES_MARK: "minutes"}
CALLS: list[tuple[str, str, tuple]] = []  # (family, what, its arguments) of reads that did work


@pytest.fixture(autouse=True)
def observed(monkeypatch):
    """Records the reads of kept sums that had something to do (they run, empty, every time)."""

    def observe(name: str, what: str) -> None:
        real = getattr(sli, name)

        def observing(family, *args):
            if args[0]:
                CALLS.append((FAMILY[family.mark], what, args))
            return real(family, *args)

        monkeypatch.setattr(sli, name, observing)

    observe("_sum_afresh", "afresh")
    observe("_sum_segments", "segments")
    CALLS.clear()


def kept_read_both(now: datetime) -> tuple[dict[str, sli.Readings], dict[str, set[str]]]:
    """The kept reading, checked against a full one; and, per family of kept sums ("hours",
    "minutes"), which of their reads did work: "afresh" (ranges summed from their start),
    "segments" (the rows a kept sum gained or lost), "kept" (the kept sums, not remembered)."""
    CALLS.clear()
    with CaptureQueriesContext(connection) as queries:
        kept = read(now, keep=True)
    assert kept == read(now, keep=False)
    table = {"hours": "FROM slos_slisums", "minutes": "FROM slos_slisums_minute"}
    ran: dict[str, set[str]] = {"hours": set(), "minutes": set()}
    for family, what, _ in CALLS:
        ran[family].add(what)
    for query in queries.captured_queries:
        for family in ran:
            sql = query["sql"]
            if sql.startswith("SELECT service_id, start, latency") and sql.endswith(table[family]):
                ran[family].add("kept")
    return kept, ran


def kept_read(now: datetime, family: str = "hours") -> tuple[dict[str, sli.Readings], set[str]]:
    kept, ran = kept_read_both(now)
    return kept, ran[family]


def test_minutes_passing_and_hours_sliding_read_only_what_changed(fleet):
    first, ran = kept_read(T1)
    assert ran == {"afresh"}  # nothing kept yet
    assert first["a-30d"].window.total > 40_000  # 30 days of the history, not nothing
    assert first["b-7d"].window.le[250] > 0
    kept_rows = SLISums.objects.count()
    # a: 30 d, 1 d, 3 d; b: 7 d, 1 d, 3 d; c: 1 d (= its 24 h window's hour), 3 d;
    # d: its month (UTC and Kolkata: one start each unless the month began < 6 h ago), 90 d,
    # 1 d, 3 d
    assert kept_rows >= 11
    _, ran = kept_read(T2)
    assert ran == set()  # the same hour: the kept sums as they are
    _, ran = kept_read(T3)
    assert ran == {"segments"}  # an hour later: a row in, a row out per rolling range
    assert SLISums.objects.count() == kept_rows
    _, ran = kept_read(T4)
    assert ran == set()
    _, ran = kept_read(T1)  # a clock going back: the same sums, from the kept ones
    assert ran == {"segments"}


def test_minutes_passing_read_the_kept_minute_blocks(fleet):
    _, ran = kept_read(T1, "minutes")
    assert ran == {"afresh"}
    assert SLIMinuteSums.objects.exists()
    slid = 0
    summed_afresh = []  # (upto, start) of every range summed from its start from now on
    for moment in MINUTE_TIMES[1:]:  # across blocks and into the next hour
        _, ran = kept_read(moment, "minutes")
        slid += "segments" in ran
        summed_afresh += [
            (args[1], start)
            for family, what, args in CALLS
            if (family, what) == ("minutes", "afresh")
            for _, start in args[0]
        ]
        _, ran = kept_read(moment, "minutes")
        assert ran == set(), moment  # the same minute: as kept
    assert slid >= 5
    # only ranges that are new and short (a lookback's or the hour's start entering the kept
    # blocks) are summed from their start: never the 2 h or 6 h ones again
    assert summed_afresh
    assert all(upto - start <= timedelta(minutes=20) for upto, start in summed_afresh)
    _, ran = kept_read(T1, "minutes")  # an hour back: the 6 h ranges from the kept sums again
    assert "segments" in ran


def test_lookbacks_in_the_second_half_of_a_block_continue_the_next_block(fleet):
    """A lookback starting at hh:x6 continues the kept sums from hh:x0 + 10 and adds the 4
    minutes before (not 6 taken away from hh:x0); a window keeps the block holding its
    start. The readings are a full read's (kept_read_both compares)."""
    moment = T1 + timedelta(minutes=6)  # hh:56, fresh minutes from hh:50
    kept_read_both(moment - timedelta(minutes=1))
    kept_read_both(moment)
    starts = set(SLIMinuteSums.objects.values_list("start", flat=True))
    lookback_30m = moment - timedelta(minutes=30)  # hh:26
    assert sli._block(lookback_30m) + sli.BLOCK in starts
    assert sli._block(lookback_30m) not in starts
    window_1h = moment - timedelta(hours=1)  # a-1h's start, and the 1 h lookback's
    a_starts = set(
        SLIMinuteSums.objects.filter(service_id=fleet[0].id).values_list("start", flat=True)
    )
    assert {sli._block(window_1h), sli._block(window_1h) + sli.BLOCK} <= a_starts


def test_a_process_without_the_kept_sums_in_memory_reads_them(fleet):
    kept_read(T1)
    sli._REMEMBERED.clear()  # another worker process
    _, ran = kept_read(T2)
    assert ran == {"kept"}
    _, ran = kept_read(T2)
    assert ran == set()  # remembered now
    _, ran = kept_read(T2, "minutes")
    assert ran == set()


def late_result(service, at: datetime) -> None:
    """A result for a past minute, recorded as check_results_record records one (its oldest
    time marks the rollups dirty), then the rollup refreshes the beat runs."""
    ensure_partitions(CHECK_RESULTS, at, at + timedelta(minutes=1))
    CheckResult.objects.create(service_id=service.id, time=at, status="down")
    mark_dirty(CHECK_RESULTS.rollups, at)
    refresh_rollups(now=END)


def test_late_results_for_a_kept_hour_are_read(fleet):
    a = fleet[0]
    kept_read(T1)
    before = read(T2, keep=False)
    late = T1 - timedelta(hours=10, minutes=7)  # an hour the kept sums cover
    late_result(a, late)
    after, ran = kept_read(T2)
    assert "afresh" in ran  # the refresh marked the kept sums dirty
    assert after["a-30d"].window.n_down > before["a-30d"].window.n_down
    assert (
        after["a-30d"].lookbacks[timedelta(days=1)] != before["a-30d"].lookbacks[timedelta(days=1)]
    )
    _, ran = kept_read(T3)
    assert ran == {"segments"}  # valid again


def test_late_results_for_a_recent_hour_need_no_hourly_recomputation(fleet):
    a = fleet[0]
    kept_read(T1)
    before = read(T2, keep=False)
    late_result(a, T1 - timedelta(minutes=100))  # within the hours read every time
    after, ran = kept_read_both(T2)
    assert ran["hours"] == set()
    assert after["a-30d"].window.n_down == before["a-30d"].window.n_down + 1
    assert "afresh" in ran["minutes"]  # but the minute blocks kept from there on are read again


def test_late_results_after_the_kept_minute_blocks_need_no_recomputation(fleet):
    a = fleet[0]
    kept_read(T1, "minutes")
    moment = T1 + timedelta(minutes=1)
    late_result(a, sli._block(moment - sli.MINUTE_SETTLE) + timedelta(minutes=2))
    after, ran = kept_read(moment, "minutes")
    assert ran == set()
    assert after["a-1h"].window.n_down >= 1


def test_edited_and_disabled_slos_read_as_from_scratch(fleet):
    kept_read(T1)
    slo = SLO.objects.get(id="a-30d")
    actions.slo_update(actor=None, slo=slo, window="7d")  # a new start for service a
    slo = SLO.objects.get(id="c-24h")
    # latency now: the service's kept sums lack the histogram
    actions.slo_update(
        actor=None, slo=slo, sli_type="latency", target="99", latency_threshold_ms=250
    )
    after, ran = kept_read(T2)
    assert "afresh" in ran
    assert after["c-24h"].window.le[250] > 0
    _, ran = kept_read(T2)
    assert ran == set()
    SLO.objects.filter(id="d-90d").update(enabled=False)
    kept_read(T3)
    d_starts = set(SLISums.objects.filter(service_id=fleet[3].id).values_list("start", flat=True))
    window_90d = actions.sli_targets([SLO.objects.get(id="d-90d")], T3)[0].window_start
    assert window_90d.replace(minute=0) not in d_starts  # no longer kept


def test_slos_evaluate_with_kept_sums_stores_what_a_full_read_gives(fleet):
    actions.slos_evaluate(now=T1)
    actions.slos_evaluate(now=T3)  # from the sums kept at T1
    fields = ("current_value", "compliant", "budget_remaining_minutes", "burn_rate",
              "violation_risk", "budget_exhausted_at", "minutes_without_data")  # fmt: skip
    warm = list(SLO.objects.order_by("id").values_list(*fields))
    SLISums.objects.all().delete()
    SLIMinuteSums.objects.all().delete()
    RollupWatermark.objects.filter(name__in=[sli.KEPT_MARK, sli.KEPT_MINUTES_MARK]).delete()
    actions.slos_evaluate(now=T3)  # nothing kept: every range from the rollups
    assert list(SLO.objects.order_by("id").values_list(*fields)) == warm
    assert SLISums.objects.exists()


def test_services_of_one_kind_slide_from_their_own_kept_sums(fleet, make_service):
    """Services with the same SLOs (the same kept starts) share how their ranges slide, worked
    out once (sli._kept_sums); each must still continue its own kept sums."""
    twins = [make_service() for _ in range(3)]
    for k, service in enumerate(twins):
        actions.slo_create(actor=None, id=f"t{k}-30d", name=f"t{k}", service=service,
                           sli_type="availability", target="99.9", window="30d")  # fmt: skip
        actions.slo_create(actor=None, id=f"t{k}-7d", name=f"t{k} 7d", service=service,
                           sli_type="latency", target="99", window="7d",
                           latency_threshold_ms=250)  # fmt: skip
    start = END - timedelta(days=DAYS)
    with connection.cursor() as cursor:
        cursor.execute(MINUTES, {"services": [s.id for s in twins], "start": start, "end": END})
    rolled_up(start)
    first, _ = kept_read_both(T1)
    windows = {astuple(first[f"t{k}-30d"].window)[:3] for k in range(3)}
    assert len(windows) > 1  # histories that differ
    for moment in (T2, T3, *MINUTE_TIMES[1:]):  # hours and blocks sliding
        _, ran = kept_read_both(moment)  # (equal to a full read)
        assert "afresh" not in ran["hours"]


def test_a_cold_read_of_many_ranges_plans_in_parallel_then_costs_as_before(fleet, monkeypatch):
    monkeypatch.setattr(sli, "MANY", 1)
    settings = ("parallel_tuple_cost", "enable_sort", "work_mem", "enable_indexscan")

    def current() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT " + ", ".join(f"current_setting('{s}')" for s in settings))
            return list(cursor.fetchone())

    before = current()
    with transaction.atomic():
        kept = sli.read(actions.sli_targets(list(SLO.objects.all()), T1), T1, keep=True)
        # (the read raised work_mem for its transaction: that stays, the afresh sums' goes)
        assert current() == [before[0], before[1], sli.WORK_MEM, before[3]]
    assert kept == read(T1, keep=False)
    assert SLISums.objects.exists()


@pytest.mark.parametrize("others", [3, 9])
def test_services_without_slos_are_not_kept(fleet, make_service, others):
    """A cold read sums every service's rows and drops those without SLOs when they are few
    (3 besides the fleet's 4), and reads only the SLOs' services' rows when they are many (9):
    either way the readings are a full read's and only the SLOs' services are kept."""
    extra = [make_service() for _ in range(others)]
    start = END - timedelta(days=DAYS)
    with connection.cursor() as cursor:
        cursor.execute(MINUTES, {"services": [s.id for s in extra], "start": start, "end": END})
    rolled_up(start)
    _, ran = kept_read_both(T1)  # (equal to a full read)
    assert "afresh" in ran["hours"] and "afresh" in ran["minutes"]
    slo_services = {s.id for s in fleet}
    for model in (SLISums, SLIMinuteSums):
        assert set(model.objects.values_list("service_id", flat=True)) == slo_services
    for moment in (T2, T3):
        kept_read_both(moment)


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("varchar", ["a-30d", "svc_1", "x"]),
        ("int", [1, -2, 30, 0]),
        ("float8", [0.1, None, 1e-07, 99.9999, 43.2, -0.0]),
        ("float8", [1.5, 2.25]),
        ("bool", [True, None, False]),
        ("bool", [True, False, True]),
        ("timestamptz", [END, None, END - timedelta(days=30)]),
        ("timestamptz", [END, END - timedelta(days=30), END, END - timedelta(hours=1)]),
    ],
)
def test_packed_lists_read_back_as_written(db, kind, values):
    """Lists go to PostgreSQL as one packed text parameter (sli.packed), joined at C speed
    when all values are of one kind."""
    with connection.cursor() as cursor:
        sli.execute(cursor, f"SELECT @{kind}@", [values])
        assert cursor.fetchone()[0] == values


def test_an_afresh_sum_reads_whole_coarse_buckets_and_the_rows_at_the_ends():
    """[start, upto): the coarse buckets from the one nearest the start up to where the coarse
    rollup is current, the rows between that bucket and the start (added when the start is in
    the second half of its bucket, taken away when in the first) and the rows after; ranges in
    no whole bucket read only rows, and every row is read once however many ranges cover it."""

    day = timedelta(days=1)
    upto = datetime(2026, 12, 5, 11, tzinfo=UTC)
    end = datetime(2026, 12, 5, tzinfo=UTC)  # the coarse rollup is current up to here
    month = datetime(2026, 11, 5, 14, tzinfo=UTC)  # second half of its day: its hours added
    three_days = datetime(2026, 12, 2, 5, tzinfo=UTC)  # first half: its day's first hours off
    today = datetime(2026, 12, 5, 2, tzinfo=UTC)  # its day is not in the coarse rollup yet
    split = sli._split({month, three_days, today}, upto, day, end)
    assert split.coarse
    nov_6, dec_2 = datetime(2026, 11, 6, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)
    assert split.fine == [(month, nov_6), (dec_2, three_days), (end, upto)]  # today's: in the last
    assert split.coarse_bounds == [nov_6, dec_2]
    assert split.coarse_end == end
    band = {moment: i for i, moment in enumerate(split.bounds, 1)}
    never = sli.NEVER
    after_end = (False, band[end], never, 1)
    assert split.parts[month] == [
        (False, band[month], band[nov_6], 1),
        after_end,
        (True, 1, never, 1),
    ]
    assert split.parts[three_days] == [
        (False, band[dec_2], band[three_days], -1),
        after_end,
        (True, 2, never, 1),
    ]
    assert split.parts[today] == [(False, band[today], never, 1)]
    # the coarse rollup behind (not refreshed for days, or a day awaiting recomputation): the
    # rows from there on
    behind = sli._split({month, three_days}, upto, day, datetime(2026, 11, 29, tzinfo=UTC))
    assert behind.fine == [(month, nov_6), (datetime(2026, 11, 29, tzinfo=UTC), upto)]
    assert behind.parts[three_days] == [(False, behind.bounds.index(three_days) + 1, never, 1)]
    # no coarse rollup: every range from its rows
    alone = sli._split({month, three_days}, upto, None, None)
    assert not alone.coarse and alone.fine == [(month, upto)]


def test_a_cold_read_takes_whole_coarse_buckets_of_minutes_only_where_they_are_current(fleet):
    """Late results rolled up per minute but not yet per 10 minutes or per hour (those
    refreshes run next): their buckets from the late one on await recomputation (dirty_since),
    so a cold read sums the minutes there; once refreshed, whole buckets are read again."""
    a = fleet[0]
    late = T1 - timedelta(hours=4, minutes=7)  # in a whole hour of the 6 h lookback
    ensure_partitions(CHECK_RESULTS, late, late + timedelta(minutes=1))
    CheckResult.objects.create(service_id=a.id, time=late, status="down")
    mark_dirty(CHECK_RESULTS.rollups, late)
    before = read(T1, keep=False)
    refresh(ROLLUPS["services_checkrollup"], now=END)
    hourly = RollupWatermark.objects.get(name="services_checkrollup_hourly")
    assert hourly.dirty_since is not None and hourly.dirty_since <= late
    kept, ran = kept_read_both(T1)  # (equal to a full read, which reads the minutes)
    assert "afresh" in ran["minutes"]
    six_hours = timedelta(hours=6)
    assert (
        kept["a-30d"].lookbacks[six_hours].n_down == before["a-30d"].lookbacks[six_hours].n_down + 1
    )
    refresh(ROLLUPS["services_checkrollup_hourly"], now=END)
    if TEN_MINUTES in ROLLUPS and is_native(ROLLUPS[TEN_MINUTES]):
        refresh_until_current(TEN_MINUTES, END)
    sli._REMEMBERED.clear()
    SLIMinuteSums.objects.all().delete()
    RollupWatermark.objects.filter(name=sli.KEPT_MINUTES_MARK).delete()
    again, ran = kept_read_both(T1)
    assert "afresh" in ran["minutes"]
    # (the longer lookbacks gained the late result too, from the hourly rollup now)
    assert again["a-30d"].lookbacks[six_hours] == kept["a-30d"].lookbacks[six_hours]


DAILY = CHECK_ROLLUP_DAILY.name
TEN_MINUTES = CHECK_ROLLUP_10MIN.name


def refresh_until_current(name: str, now: datetime) -> None:
    """A rollup with a per-run limit (catch_up) refreshed as the beat would, run after run,
    until it has nothing left to compute."""
    rollup = ROLLUPS[name]
    for _ in range(100):
        marks = RollupWatermark.objects.filter(name=name).values_list("upto", "dirty_since")
        before = list(marks)
        refresh(rollup, now=now)
        if list(marks.all()) == before:  # (.all(): not the cached result)
            return
    raise AssertionError(f"{name} never caught up")


def cold_read(now: datetime) -> tuple[dict[str, sli.Readings], list[str]]:
    """A cold read at `now` (nothing kept; checked against a full read), and its statements
    that summed kept ranges afresh."""
    sli._REMEMBERED.clear()
    SLISums.objects.all().delete()
    SLIMinuteSums.objects.all().delete()
    RollupWatermark.objects.filter(name__in=[sli.KEPT_MARK, sli.KEPT_MINUTES_MARK]).delete()
    with CaptureQueriesContext(connection) as queries:
        readings, _ = kept_read_both(now)
    return readings, [
        q["sql"] for q in queries.captured_queries if q["sql"].startswith("WITH keys AS")
    ]


def test_a_cold_read_takes_whole_days_from_the_daily_rollup_only_where_it_is_current(fleet):
    """Late results for a day the daily rollup holds, rolled up per minute and per hour but not
    yet per day (its refresh comes next): that day awaits recomputation (dirty_since), so a
    cold read sums its hours; once refreshed, whole days are read again."""
    if not is_native(ROLLUPS[DAILY]):
        pytest.skip("no daily rollup on this backend")
    refresh_until_current(DAILY, END)
    _, statements = cold_read(T1)
    assert any(f"FROM {DAILY} r" in sql for sql in statements)  # whole days
    a = fleet[0]
    late = T1 - timedelta(days=5, minutes=7)  # a whole day of the 30-day window
    ensure_partitions(CHECK_RESULTS, late, late + timedelta(minutes=1))
    CheckResult.objects.create(service_id=a.id, time=late, status="down")
    mark_dirty(CHECK_RESULTS.rollups, late)
    before = read(T1, keep=False)
    refresh(ROLLUPS["services_checkrollup"], now=END)
    refresh(ROLLUPS["services_checkrollup_hourly"], now=END)
    daily = RollupWatermark.objects.get(name=DAILY)
    assert daily.dirty_since is not None and daily.dirty_since <= late
    kept, statements = cold_read(T1)  # (equal to a full read, which reads the hours)
    assert any(f"FROM {DAILY} r" in sql for sql in statements)  # the days before the late one
    assert kept["a-30d"].window.n_down == before["a-30d"].window.n_down + 1
    refresh_until_current(DAILY, END)
    assert RollupWatermark.objects.get(name=DAILY).dirty_since is None
    again, statements = cold_read(T1)
    assert any(f"FROM {DAILY} r" in sql for sql in statements)
    assert again == kept


@pytest.mark.parametrize(("hour", "minute"), [(7, 14), (19, 44)])
def test_cold_reads_from_either_half_of_a_coarse_bucket_read_as_a_full_read(
    fleet, monkeypatch, hour, minute
):
    """Ranges starting in the first half of a day (or of an hour, for the minute family) take
    the whole coarse bucket and the rows before their start away; in the second half, the rows
    up to the next bucket are added. Either way the readings are a full read's."""
    moment = (END - timedelta(hours=2)).replace(hour=hour, minute=minute)
    if moment > END - timedelta(hours=2):
        moment -= timedelta(days=1)
    heads: dict[timedelta, set[int]] = {timedelta(days=1): set(), timedelta(hours=1): set()}
    real = sli._split
    # (the 10-minute rollup behind, so that the minute sums take whole hours: their starts are
    # on 10-minute blocks, which its buckets hold exactly)
    RollupWatermark.objects.filter(name=TEN_MINUTES).update(upto=moment - timedelta(hours=8))

    def observing(starts, upto, size, end):
        split = real(starts, upto, size, end)
        for parts in split.parts.values():
            if len(parts) > 1:  # (head, rows after `end`, coarse buckets): its head's sign
                heads.setdefault(size, set()).add(parts[0][3])
        return split

    monkeypatch.setattr(sli, "_split", observing)
    cold_read(moment)  # (compared with a full read)
    assert heads[timedelta(days=1)] and heads[timedelta(hours=1)]
    assert (-1 in heads[timedelta(days=1)]) == (hour < 12)  # the 1 d, 3 d, 30 d … starts
    assert (-1 in heads[timedelta(hours=1)]) == (minute < 30)  # the 6 h lookback's block


def test_a_coarse_rollup_behind_leaves_the_cold_read_to_the_next(fleet):
    """The 10-minute rollup not refreshed for hours (its worker down, or catching up after the
    migration): the minute sums take whole hours and the minutes at the ends; once current,
    whole hours and the 10-minute rows at the ends, no minute rows."""
    if not (TEN_MINUTES in ROLLUPS and is_native(ROLLUPS[TEN_MINUTES])):
        pytest.skip("no 10-minute rollup on this backend")
    minute_rows = "FROM services_checkrollup WHERE"
    current, statements = cold_read(T1)
    # 10-minute rows at the ends of the ranges (on 10-minute blocks) and hours between them
    assert any(TEN_MINUTES in sql for sql in statements)
    assert not any(minute_rows in sql for sql in statements)
    RollupWatermark.objects.filter(name=TEN_MINUTES).update(upto=T1 - timedelta(hours=3))
    behind, statements = cold_read(T1)  # (equal to a full read)
    assert not any(TEN_MINUTES in sql for sql in statements)
    assert any(minute_rows in sql for sql in statements)
    assert any("FROM services_checkrollup_hourly r" in sql for sql in statements)
    assert behind == current


@pytest.mark.django_db(transaction=True)
def test_a_refresh_committing_during_a_cold_read_marks_the_kept_sums_after_it(fleet, monkeypatch):
    """Late results: the hourly refresh rewrites an hour of a day the daily rollup holds while
    a cold evaluation, its kept sums' mark locked, has read the daily rollup's watermark but
    not yet the rows. The refresh waits for the evaluation and marks its sums dirty after it
    (marking them before would be undone by the evaluation's commit), so the next evaluation
    sums them again, now without that day's daily row."""
    import threading

    from django.db import connections

    a = fleet[0]
    rollup_tables = [r for r in ("services_checkrollup", "services_checkrollup_hourly", DAILY,
                                 TEN_MINUTES) if r in ROLLUPS]  # fmt: skip
    try:
        late = T1 - timedelta(days=5, minutes=7)  # a whole day of a-30d's window
        ensure_partitions(CHECK_RESULTS, late, late + timedelta(minutes=1))
        CheckResult.objects.create(service_id=a.id, time=late, status="down")
        mark_dirty(CHECK_RESULTS.rollups, late)
        refresh(ROLLUPS["services_checkrollup"], now=END)  # the hourly refresh comes next
        finished = threading.Event()
        errors: list[Exception] = []

        def refresh_hourly() -> None:
            try:
                refresh(ROLLUPS["services_checkrollup_hourly"], now=END)
            except Exception as error:  # reported by the test
                errors.append(error)
            finally:
                connections.close_all()
                finished.set()

        real = sli._afresh_context
        threads: list[threading.Thread] = []

        def racing(coarse, upto, **options):
            context = real(coarse, upto, **options)
            if not threads and any(c.source == DAILY for c in coarse):
                threads.append(threading.Thread(target=refresh_hourly))
                threads[0].start()
                assert not finished.wait(2)  # its rows written, it waits for the mark
            return context

        before = read(T1, keep=False)
        monkeypatch.setattr(sli, "_afresh_context", racing)
        actions.slos_evaluate(now=T1)  # cold: the old daily and hourly rows
        monkeypatch.setattr(sli, "_afresh_context", real)
        threads[0].join(30)
        assert finished.is_set() and not errors
        assert RollupWatermark.objects.get(name=sli.KEPT_MARK).dirty_since is not None
        after, ran = kept_read_both(T1)  # (equal to a full read)
        assert "afresh" in ran["hours"]
        assert after["a-30d"].window.n_down == before["a-30d"].window.n_down + 1
    finally:
        services = [s.id for s in fleet]
        with connection.cursor() as cursor:  # (not flushed: tables of no managed model)
            for table in rollup_tables:
                cursor.execute(f"DELETE FROM {table} WHERE service_id = ANY(%s)", [services])


def test_a_cold_read_with_the_coarse_rollups_behind_reads_the_rows_they_lack(fleet):
    """The daily rollup 10 days behind and the hourly 5 hours behind (a worker down, or
    catching up after the migration: their newer buckets never computed): a cold sum reads
    whole days up to where the daily rollup ends, and hours after."""
    daily_upto = (END - timedelta(days=10)).replace(hour=0)
    hourly_upto = END - timedelta(hours=5)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {DAILY} WHERE bucket >= %s", [daily_upto])
        cursor.execute("DELETE FROM services_checkrollup_hourly WHERE bucket >= %s", [hourly_upto])
    RollupWatermark.objects.filter(name=DAILY).update(upto=daily_upto, dirty_since=None)
    RollupWatermark.objects.filter(name="services_checkrollup_hourly").update(
        upto=hourly_upto, dirty_since=None
    )
    a = fleet[0].id
    start, upto = (T1 - timedelta(days=20)).replace(minute=0), END - timedelta(hours=12)
    sums = sli._sum_afresh(sli.HOURS, {(a, start): True}, upto)[a, start]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f'sum({e})' for e in sli.HOURS.expressions.values())} "
            "FROM services_checkrollup_hourly r WHERE service_id = %s AND bucket >= %s "
            "AND bucket < %s",
            [a, start, upto],
        )
        assert sums == tuple(cursor.fetchone())
