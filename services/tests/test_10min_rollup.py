"""The 10-minute check rollup (services_checkrollup_10min), built from the per-minute one on
plain PostgreSQL: each bucket the sum of its minutes, computed once three minutes after it ends,
never marked dirty by the routine minute refresh, a late write recomputing it, a first refresh
bounded to the 2 days' retention and caught up two hours per refresh, and nothing that lists the
time-series tables failing where the table does not exist (test_coarse_rollups.py)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from noc.models import RollupWatermark
from noc.timeseries import partitions
from noc.timeseries.maintenance import maintain_all
from noc.timeseries.rollups import ROLLUPS, date_bin, is_native, mark_dirty, refresh
from services import actions
from services.choices import LATENCY_BUCKETS_MS
from services.tests.rollup_rows import COLUMNS, COUNTS, LES, MINUTE, rows
from services.timeseries import (
    CHECK_ROLLUP_10MIN,
    CHECK_ROLLUP_HOURLY,
    ROLLUP_10MIN_TABLE,
    ROLLUP_TABLE,
)

pytestmark = pytest.mark.django_db

TENMIN, HOURLY = CHECK_ROLLUP_10MIN.name, CHECK_ROLLUP_HOURLY.name
TEN = timedelta(minutes=10)
STEP = CHECK_ROLLUP_10MIN.catch_up // TEN  # buckets one refresh computes at most
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)

# Pseudo-random but repeatable minute rows (x a hash of the service and the minute), about 1 %
# of minutes missing, some with no check counted (maintenance only).
_MINUTE_LES = ", ".join(f"(x %% 4 > 0 AND x %% 600 <= {ms})::int" for ms in LATENCY_BUCKETS_MS)
MINUTES = f"""
INSERT INTO services_checkrollup (bucket, service_id, n_up, n_degraded, n_down, n_maintenance,
    rt_count, rt_sum, rt_min, rt_max, {LES})
SELECT m, s, (x %% 4 > 0 AND x %% 11 > 0)::int, (x %% 7 = 0)::int, (x %% 4 = 0)::int,
       (x %% 11 = 0)::int, (x %% 4 > 0)::int, x %% 600, x %% 600, x %% 600, {_MINUTE_LES}
FROM unnest(%(services)s::varchar[]) AS s,
     generate_series(%(start)s::timestamptz, %(end)s::timestamptz - interval '1 minute',
                     interval '1 minute') AS m,
     LATERAL (SELECT abs(hashtext(s || m::text)) AS x) AS y
WHERE x %% 100 > 0
"""


@pytest.fixture(autouse=True)
def _native():
    if not is_native(CHECK_ROLLUP_10MIN):
        pytest.skip("the 10-minute rollup exists on the native backend only")


def tens_of(minute_rows: list[dict]) -> dict[tuple, dict]:
    """The 10-minute rows expected from minute rows, summed here in Python: counts and rt_sum
    summed, rt_min/rt_max the least/greatest, m_total the minutes with a check counted and
    m_good_avail those of them without a failure."""
    tens: dict[tuple, dict] = defaultdict(lambda: defaultdict(int))
    for row in minute_rows:
        start = row["bucket"].replace(minute=row["bucket"].minute // 10 * 10)
        ten = tens[(start, row["service_id"])]
        for column in (*COUNTS, "rt_sum"):
            ten[column] += row[column]
        for column, pick in (("rt_min", min), ("rt_max", max)):
            ten[column] = pick(ten.get(column, row[column]), row[column])
        with_data = row["n_up"] + row["n_degraded"] + row["n_down"] > 0
        ten["m_total"] += with_data
        ten["m_good_avail"] += with_data and row["n_down"] == 0
    return {key: dict(value) for key, value in tens.items()}


def minutes_between(start: datetime, end: datetime) -> list[dict]:
    return rows(MINUTE, "WHERE bucket >= %s AND bucket < %s", [start, end])


def tenmin() -> dict[tuple, dict]:
    return {
        (row["bucket"], row["service_id"]): {c: row[c] for c in COLUMNS} for row in rows(TENMIN)
    }


def watermark() -> tuple[datetime, datetime | None]:
    mark = RollupWatermark.objects.get(name=TENMIN)
    return mark.upto, mark.dirty_since


def insert_minutes(services: list[str], start: datetime, end: datetime) -> None:
    partitions.ensure(ROLLUP_TABLE, start, end)
    with connection.cursor() as cursor:
        cursor.execute(MINUTES, {"services": services, "start": start, "end": end})


def late_result(service: str, minute: datetime, failed: int) -> None:
    """A late result's effect on a minute row: `failed` more down checks and no up ones (the
    row is created where the minute had none)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {MINUTE} (bucket, service_id, n_up, n_degraded, n_down, n_maintenance, "
            f"rt_count, {LES}) VALUES (%s, %s, 0, 0, %s, 0, 0, "
            f"{', '.join('0' for _ in LATENCY_BUCKETS_MS)}) ON CONFLICT (service_id, bucket) "
            f"DO UPDATE SET n_up = 0, n_down = {MINUTE}.n_down + EXCLUDED.n_down",
            [minute, service, failed],
        )
        assert cursor.rowcount == 1


def test_the_contract_the_slo_reader_relies_on():
    rollup = CHECK_ROLLUP_10MIN
    assert (TENMIN, rollup.source) == ("services_checkrollup_10min", "services_checkrollup")
    assert (rollup.bucket, rollup.time_column, rollup.key_columns) == (TEN, "bucket",
                                                                       ("service_id",))  # fmt: skip
    assert (rollup.overlap, rollup.settle) == (timedelta(0), timedelta(minutes=3))
    assert rollup.catch_up == timedelta(hours=2) and rollup.native_only
    assert rollup.select == CHECK_ROLLUP_HOURLY.select
    assert date_bin(rollup).endswith(", bucket, TIMESTAMPTZ '2000-01-01 00:00:00+00')")
    assert ROLLUP_10MIN_TABLE.retention == timedelta(days=2) >= timedelta(hours=6)
    assert ROLLUP_10MIN_TABLE.partition == timedelta(days=1)
    with connection.cursor() as cursor:
        columns = {
            table: [c.name for c in connection.introspection.get_table_description(cursor, table)]
            for table in (HOURLY, TENMIN)
        }
        cursor.execute(
            "SELECT array_agg(a.attname ORDER BY array_position(i.indkey::smallint[], a.attnum)) "
            "FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary",
            [TENMIN],
        )
        assert cursor.fetchone()[0] == ["service_id", "bucket"]
    assert columns[TENMIN] == columns[HOURLY]


def test_buckets_are_aligned_to_2000_01_01_utc():
    # 10-minute buckets from 2000-01-01 00:00 UTC: an hour's :00, :10, ... :50.
    end = TODAY - timedelta(days=1)
    start = end - timedelta(hours=1)
    insert_minutes(["a"], start, end)
    RollupWatermark.objects.create(name=TENMIN, upto=start)
    refresh(CHECK_ROLLUP_10MIN, now=end + timedelta(minutes=3))
    assert sorted(bucket for bucket, _ in tenmin()) == [start + TEN * k for k in range(6)]
    assert tenmin() == tens_of(rows(MINUTE))


def test_a_first_refresh_reads_only_the_retention_and_catches_up_two_hours_at_a_time():
    """Minute rows 400 days back (the minute rollup keeps 400 days) and over the last 2.5
    days: the first refresh starts at the oldest minute row, bounded to the 2 days' retention;
    nothing older is computed nor gets a partition, and it catches up two hours a refresh."""
    services = ["a", "b", "c"]
    end = TODAY - timedelta(days=1)  # a bucket boundary
    now = end + timedelta(minutes=3)
    old = end - timedelta(days=400)
    insert_minutes(services, old, old + timedelta(hours=1))
    insert_minutes(services, end - timedelta(days=2, hours=12), end)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT min(bucket) FROM {MINUTE}")
        assert cursor.fetchone()[0] == old  # where the refresh starts, before the retention

    steps = []
    while written := refresh(CHECK_ROLLUP_10MIN, now=now):
        steps.append((written, watermark()))

    start = end - timedelta(days=2)  # now - 2 days, on a bucket
    buckets = (end - start) // TEN
    assert steps == [
        (min(STEP, buckets - k) * 3, (start + TEN * min(k + STEP, buckets), None))
        for k in range(0, buckets, STEP)
    ]
    assert len(steps) == 24
    assert tenmin() == tens_of(minutes_between(start, end))
    assert min(bucket for bucket, _ in tenmin()) == start
    assert min(p.start for p in partitions.existing(ROLLUP_10MIN_TABLE)) > start - timedelta(days=2)


def test_a_late_rewrite_older_than_the_watermark_is_recomputed_in_bounded_steps():
    services = ["a", "b"]
    end = TODAY - timedelta(days=1)
    start = end - timedelta(hours=8)
    now = end + timedelta(minutes=3)
    insert_minutes(services, start, end)
    RollupWatermark.objects.create(name=TENMIN, upto=start)
    while refresh(CHECK_ROLLUP_10MIN, now=now):
        pass
    # Late results rewrite minutes 1 h and 7 h after start: the minute refresh marks the
    # 10-minute rollup dirty from the older one, 7 hours before its watermark.
    early, late = start + timedelta(hours=1, minutes=4), start + timedelta(hours=7, minutes=59)
    late_result("a", early, 7)
    late_result("a", late, 7)
    mark_dirty((TENMIN,), early)
    stale, expected = tenmin(), tens_of(rows(MINUTE))
    first, last = (start + timedelta(hours=1), "a"), (start + timedelta(hours=7, minutes=50), "a")
    assert stale[first] != expected[first] and stale[last] != expected[last]

    assert refresh(CHECK_ROLLUP_10MIN, now=now) == STEP * 2
    assert watermark() == (end, first[0] + TEN * STEP)  # the rest stays dirty
    assert tenmin()[first] == expected[first] and tenmin()[last] == stale[last]
    assert refresh(CHECK_ROLLUP_10MIN, now=now) == STEP * 2
    assert refresh(CHECK_ROLLUP_10MIN, now=now) == STEP * 2
    assert watermark() == (end, first[0] + TEN * STEP * 3)
    assert refresh(CHECK_ROLLUP_10MIN, now=now) == (end - first[0] - TEN * STEP * 3) // TEN * 2
    assert watermark() == (end, None)
    assert tenmin() == expected
    assert refresh(CHECK_ROLLUP_10MIN, now=now) == 0


def test_routine_refreshes_leave_it_clean_and_a_late_rewrite_marks_and_fixes_its_bucket():
    """The beat task's refreshes every 15 s for an hour, the 10-minute rollup before the
    minute one (the worst order: two runs of the beat task may overlap): the minute rollup
    rewrites its last minutes each time, but never inside a bucket already computed, so the
    10-minute rollup is never marked dirty; each bucket appears at 3:00 after its end, equal to
    its minutes. Then a late result inside a computed bucket: the minute refresh marks the
    10-minute rollup dirty from its minute, and the next refresh fixes the bucket."""
    services = ["a", "b"]
    first = TODAY - timedelta(days=1) + timedelta(hours=10)
    last = first + timedelta(hours=1)
    insert_minutes(services, first - timedelta(hours=1), last + timedelta(minutes=10))
    # Steady state at `first`: the minute rollup's last refresh a moment ago, the 10-minute one
    # up to the bucket before the one that just ended (settling until 3 minutes past `first`).
    RollupWatermark.objects.create(name=MINUTE, upto=first - timedelta(minutes=1))
    RollupWatermark.objects.create(name=TENMIN, upto=first - TEN)

    now, seen = first, []
    while now < last:
        refresh(CHECK_ROLLUP_10MIN, now=now)
        seen.append((now, watermark()))
        refresh(ROLLUPS[MINUTE], now=now)
        assert watermark()[1] is None, f"marked dirty at {now:%H:%M:%S}"
        now += timedelta(seconds=15)

    # Each bucket computed at the first refresh 3 minutes after it ends, not at 2:45.
    computed = {}
    for at, (upto, _) in seen:
        computed.setdefault(upto, at)
    del computed[first - TEN]
    assert computed == {first + TEN * k: first + TEN * k + timedelta(minutes=3) for k in range(6)}
    upto = watermark()[0]
    assert upto == first + timedelta(minutes=50)
    assert tenmin() == tens_of(minutes_between(first - TEN, upto))

    # A late result at 10:31: the writer marks the minute rollup, whose refresh marks this one.
    late = first + timedelta(minutes=31)
    late_result("a", late, 1)
    mark_dirty((MINUTE,), late)
    refresh(ROLLUPS[MINUTE], now=now)
    assert watermark() == (upto, late)
    assert tenmin() != tens_of(minutes_between(first - TEN, upto))
    assert refresh(CHECK_ROLLUP_10MIN, now=now) == 2 * 2  # 10:30 and 10:40
    assert watermark() == (upto, None)
    assert tenmin() == tens_of(minutes_between(first - TEN, upto))


def test_a_bucket_is_computed_only_once_settled():
    end = TODAY - timedelta(days=1, hours=5)
    start = end - timedelta(hours=1)
    insert_minutes(["a"], start, end + timedelta(minutes=5))
    RollupWatermark.objects.create(name=TENMIN, upto=start)
    assert refresh(CHECK_ROLLUP_10MIN, now=end + timedelta(minutes=2, seconds=59)) == 5
    assert watermark() == (end - TEN, None)
    assert refresh(CHECK_ROLLUP_10MIN, now=end + timedelta(minutes=2, seconds=59)) == 0
    assert refresh(CHECK_ROLLUP_10MIN, now=end + timedelta(minutes=3)) == 1
    assert watermark() == (end, None)
    assert tenmin() == tens_of(minutes_between(start, end))


def test_deleting_a_service_deletes_its_10min_rows(make_service):
    service = make_service()
    end = TODAY - timedelta(days=1)
    start = end - timedelta(hours=1)
    insert_minutes([service.id, "other"], start, end)
    RollupWatermark.objects.create(name=TENMIN, upto=start)
    refresh(CHECK_ROLLUP_10MIN, now=end + timedelta(minutes=3))
    assert {s for _, s in tenmin()} == {service.id, "other"}
    actions.service_delete(actor=None, service=service)
    assert {s for _, s in tenmin()} == {"other"}


def test_maintenance_drops_its_partitions_past_2_days():
    now = datetime.now(UTC)
    partitions.ensure(ROLLUP_10MIN_TABLE, now - timedelta(days=6), now)
    assert min(p.start for p in partitions.existing(ROLLUP_10MIN_TABLE)) < now - timedelta(days=5)
    maintain_all()
    assert min(p.end for p in partitions.existing(ROLLUP_10MIN_TABLE)) > now - timedelta(days=2)
