"""The log lines' trigram index (substring search) kept per partition as LOG_TRIGRAM_INDEX says:
on the days past (the default), on every day, or on none; substring search finds the same
lines whichever partitions carry it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from noc.timeseries import backend, partitions
from observability.logs.postgres import PostgresLogStore
from observability.logs.query import LogQuery, parse
from observability.tests.logs_fixtures import record
from observability.timeseries import LOG_LINES, MESSAGE_TRIGRAMS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def native_with_trigrams():
    if backend.table_backend_of(connection, LOG_LINES.table) != backend.NATIVE:
        pytest.skip("per-partition indexes are kept on native partitions only")
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        if cursor.fetchone() is None:
            pytest.skip("pg_trgm is not installed on this server")


def maintain(spec) -> dict:
    """What the maintenance task does to the table's partition indexes."""
    return {"indexes": partitions.keep_indexes(spec)}


def kept(on: str):
    return replace(LOG_LINES, partition_indexes=(replace(MESSAGE_TRIGRAMS, on=on),))


def indexed_days() -> set:
    """The days whose partition has a valid trigram index."""
    present = partitions._indexes_present(LOG_LINES, MESSAGE_TRIGRAMS, connection)
    return {
        p.start.date()
        for p in partitions.existing(LOG_LINES)
        if present.get(partitions.index_name(p, MESSAGE_TRIGRAMS))
    }


def table_trigram_index() -> list[tuple[str, bool]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
            "WHERE indrelid = %s::regclass AND indexrelid::regclass::text = 'logline_message_trgm'",
            [LOG_LINES.table],
        )
        return cursor.fetchall()


def today() -> datetime:
    return partitions.floor(datetime.now(UTC), timedelta(days=1))


def test_by_default_the_days_past_have_the_index_and_today_does_not():
    maintain(kept("closed"))
    days = indexed_days()
    assert (today() - timedelta(days=1)).date() in days
    assert today().date() not in days
    assert (today() + timedelta(days=1)).date() not in days
    assert table_trigram_index() == []  # nothing on the table: writes to today skip it


def test_the_setting_builds_it_everywhere_or_drops_it_everywhere():
    assert maintain(kept("all"))["indexes"]["built"]
    assert today().date() in indexed_days()
    report = maintain(kept("off"))["indexes"]
    assert report["dropped"] and not report["built"]
    assert indexed_days() == set()
    maintain(kept("closed"))
    assert today().date() not in indexed_days()
    assert (today() - timedelta(days=1)).date() in indexed_days()


def test_an_index_a_stopped_build_left_invalid_is_made_again():
    maintain(kept("closed"))
    yesterday = next(p for p in partitions.existing(LOG_LINES) if p.end == today())
    name = partitions.index_name(yesterday, MESSAGE_TRIGRAMS)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [name]
        )
    assert yesterday.start.date() not in indexed_days()
    assert maintain(kept("closed"))["indexes"]["built"] == [name]
    assert yesterday.start.date() in indexed_days()


@pytest.mark.parametrize("on", ["closed", "all", "off"])
def test_substrings_are_found_today_and_on_days_past_whatever_carries_the_index(application, on):
    maintain(kept(on))
    PostgresLogStore().write([
        record(application, "charged card-4242 today", minutes_ago=5),
        record(application, "charged card-9999 today", minutes_ago=4),
        record(application, "charged card-4242 two days ago", minutes_ago=2 * 24 * 60),
        record(application, "charged CARD-4242 yesterday", minutes_ago=24 * 60 + 30),
    ])  # fmt: skip
    now = datetime.now(UTC)
    query = LogQuery(terms=parse("*card-4242*"), since=now - timedelta(days=3), until=now)
    assert [hit.message for hit in PostgresLogStore().search(query).hits] == [
        "charged card-4242 today",
        "charged CARD-4242 yesterday",
        "charged card-4242 two days ago",
    ]


def test_a_closed_day_is_searched_through_its_index():
    maintain(kept("closed"))
    yesterday = next(p for p in partitions.existing(LOG_LINES) if p.end == today())
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # an empty partition is cheap to scan
        cursor.execute(
            f'EXPLAIN SELECT uid FROM "{yesterday.name}" WHERE message ILIKE %s', ["%card-42%"]
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert partitions.index_name(yesterday, MESSAGE_TRIGRAMS) in plan


@pytest.mark.django_db(transaction=True)
def test_the_migration_moves_the_index_both_ways_on_a_populated_table(application):
    PostgresLogStore().write([
        record(application, f"line {i} of the populated table", minutes_ago=i * 60)
        for i in range(40)
    ])  # fmt: skip
    executor = MigrationExecutor(connection)
    executor.migrate([("observability", "0004_spans")])
    assert table_trigram_index() == [("logline_message_trgm", True)]  # every partition attached
    latest = ("observability", "0005_log_trigram_index_per_partition")
    MigrationExecutor(connection).migrate([latest])
    assert table_trigram_index() == []
    assert (today() - timedelta(days=1)).date() in indexed_days()
    assert today().date() not in indexed_days()


def test_an_unknown_setting_stops_the_start_naming_the_values():
    from noc.tests.test_settings import run_django

    result = run_django("", LOG_TRIGRAM_INDEX="sometimes")
    assert result.returncode != 0
    assert "LOG_TRIGRAM_INDEX must be closed, all or off, not 'sometimes'" in result.stderr


def test_the_maintenance_task_builds_the_days_past_indexes_after_every_tables_partitions():
    from noc.timeseries.maintenance import maintain_all

    done = maintain_all()
    assert "indexes" in done[LOG_LINES.table]
    assert (today() - timedelta(days=1)).date() in indexed_days()


# --- the build task: one per day, scheduled by the maintenance task ------------------------------


def yesterday_partition():
    return next(p for p in partitions.existing(LOG_LINES) if p.end == today())


def build_task(partition) -> str:
    from noc.tasks import timeseries_index_build

    return timeseries_index_build(LOG_LINES.table, partition.name, MESSAGE_TRIGRAMS.suffix)


def index_state(partition) -> bool | None:
    """True: valid; False: present but invalid; None: absent."""
    present = partitions._indexes_present(LOG_LINES, MESSAGE_TRIGRAMS, connection)
    return present.get(partitions.index_name(partition, MESSAGE_TRIGRAMS))


def raw_connection():
    """A connection of its own to the test database (another session)."""
    raw = connection.get_new_connection(connection.get_connection_params())
    raw.autocommit = True
    return raw


def wait_for(condition, timeout: float = 20.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def build_waiting_on_lock(raw) -> bool:
    """Whether a CREATE INDEX is waiting for a lock (the session `raw` holds on the table)."""
    row = raw.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%%' "
        "AND wait_event_type = 'Lock' AND datname = current_database()"
    ).fetchone()
    return row[0] > 0


@pytest.mark.django_db(transaction=True)
def test_the_maintenance_task_schedules_a_build_per_closed_day_instead_of_building_it():
    from noc.timeseries.maintenance import maintain_all

    maintain(kept("off"))
    scheduled = []
    done = maintain_all(schedule_index_build=lambda *args: scheduled.append(args))
    yesterday = yesterday_partition()
    name = partitions.index_name(yesterday, MESSAGE_TRIGRAMS)
    assert (LOG_LINES.table, yesterday.name, MESSAGE_TRIGRAMS.suffix) in scheduled
    assert name in done[LOG_LINES.table]["indexes"]["scheduled"]
    assert not any(args[1] == partitions.partition_name(LOG_LINES, today()) for args in scheduled)
    assert indexed_days() == set()  # nothing built by the maintenance task itself

    for args in scheduled:
        assert build_task(next(p for p in partitions.existing(LOG_LINES) if p.name == args[1])) \
            == "built"  # fmt: skip
    assert yesterday.start.date() in indexed_days()
    assert build_task(yesterday) == "present"  # idempotent
    again = []
    maintain_all(schedule_index_build=lambda *args: again.append(args))
    assert again == []  # every closed day is built: nothing more to schedule


@pytest.mark.django_db(transaction=True)
def test_the_build_task_does_not_build_where_the_setting_does_not_want_it_or_the_day_is_gone():
    from noc.tasks import timeseries_index_build

    maintain(kept("off"))
    today_name = partitions.partition_name(LOG_LINES, today())
    assert timeseries_index_build(LOG_LINES.table, today_name, MESSAGE_TRIGRAMS.suffix) == (
        "not wanted"  # closed (the default): today is still being written
    )
    gone = partitions.partition_name(LOG_LINES, today() - timedelta(days=400))
    assert timeseries_index_build(LOG_LINES.table, gone, MESSAGE_TRIGRAMS.suffix) == "gone"
    assert indexed_days() == set()


@pytest.mark.django_db(transaction=True)
def test_an_invalid_index_an_interrupted_build_left_is_dropped_and_built_again(application):
    import threading

    from django.db import OperationalError, connections

    maintain(kept("off"))
    yesterday = yesterday_partition()
    PostgresLogStore().write([record(application, "a line of yesterday", minutes_ago=24 * 60)])
    name = partitions.index_name(yesterday, MESSAGE_TRIGRAMS)
    # A real interrupted build: CREATE INDEX CONCURRENTLY records the (invalid) index, then
    # waits for the transaction writing to the partition; it is cancelled there.
    writer = raw_connection()
    writer.autocommit = False
    writer.execute(f'LOCK TABLE "{yesterday.name}" IN ROW EXCLUSIVE MODE')
    failures = []

    def interrupted_build():
        try:
            with connections["default"].cursor() as cursor:
                cursor.execute(
                    f'CREATE INDEX CONCURRENTLY "{name}" ON "{yesterday.name}" '
                    f"USING {MESSAGE_TRIGRAMS.method}"
                )
        except OperationalError as exc:
            failures.append(exc)
        finally:
            connections["default"].close()

    thread = threading.Thread(target=interrupted_build)
    thread.start()
    watcher = raw_connection()
    wait_for(lambda: build_waiting_on_lock(watcher))
    watcher.execute(
        "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX%%' "
        "AND datname = current_database()"
    )
    thread.join(timeout=20)
    writer.rollback()
    writer.close()
    watcher.close()
    assert failures and "canceling statement" in str(failures[0])
    assert index_state(yesterday) is False  # left INVALID

    assert build_task(yesterday) == "built"
    assert index_state(yesterday) is True
    query = LogQuery(terms=parse("*esterda*"), since=yesterday.start, until=today())
    assert [h.message for h in PostgresLogStore().search(query).hits] == ["a line of yesterday"]


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_build_the_index_once_and_the_second_leaves_the_first_alone():
    import threading

    from django.db import connections

    maintain(kept("off"))
    yesterday = yesterday_partition()
    # The first run's build waits for a writer's transaction on the partition, so it is still
    # in progress (its index present and not yet valid) when the second run starts.
    writer = raw_connection()
    writer.autocommit = False
    writer.execute(f'LOCK TABLE "{yesterday.name}" IN ROW EXCLUSIVE MODE')
    results = {}

    def run(label: str) -> None:
        try:
            results[label] = build_task(yesterday)
        finally:
            connections["default"].close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    watcher = raw_connection()
    wait_for(lambda: build_waiting_on_lock(watcher))
    assert index_state(yesterday) is False  # in progress
    second = threading.Thread(target=run, args=("second",))
    second.start()
    second.join(timeout=20)
    assert results == {"second": "busy"}  # at once, without touching the build in progress
    writer.commit()
    writer.close()
    watcher.close()
    first.join(timeout=60)
    assert results == {"second": "busy", "first": "built"}
    assert index_state(yesterday) is True
    assert build_task(yesterday) == "present"


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_acknowledges_the_build_when_it_starts_not_when_it_ends():
    """A build outlasts the broker's visibility timeout: a message still unacknowledged then
    would be delivered again to another worker, every hour. The build is acknowledged as soon
    as it starts (a worker of its own on the test database, its build held half-way). The
    prefork pool, as `make run` and compose start it: a solo worker runs the task inside the
    consumer's loop, where Celery's ack waits (Consumer.call_soon) until the task returns."""
    import os
    import subprocess
    import sys
    import uuid
    from urllib.parse import urlsplit

    from noc.celery import app
    from noc.settings import BASE_DIR
    from noc.tasks import timeseries_index_build

    maintain(kept("off"))
    yesterday = yesterday_partition()
    writer = raw_connection()
    writer.autocommit = False
    writer.execute(f'LOCK TABLE "{yesterday.name}" IN ROW EXCLUSIVE MODE')
    watcher = raw_connection()
    url = urlsplit(os.environ["DATABASE_URL"])
    database_url = url._replace(path=f"/{connection.settings_dict['NAME']}").geturl()
    queue = f"test-build-{uuid.uuid4().hex[:8]}"
    worker = subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "noc", "worker", "-Q", queue, "-P", "prefork",
            "--concurrency", "1", "-n", f"{queue}@%h", "--without-heartbeat",
            "--without-gossip", "--without-mingle", "--loglevel", "WARNING",
        ],
        cwd=BASE_DIR,
        env=os.environ | {"NOC_EMBEDDED": "off", "DATABASE_URL": database_url},
    )  # fmt: skip
    try:
        sent = timeseries_index_build.apply_async(
            (LOG_LINES.table, yesterday.name, MESSAGE_TRIGRAMS.suffix), queue=queue
        )
        wait_for(lambda: build_waiting_on_lock(watcher), timeout=90)  # running in the worker
        with app.connection_for_read() as broker:
            channel = broker.default_channel
            unacked = channel.client.hvals(channel.unacked_key)
        assert not [m for m in unacked if sent.id.encode() in m], "still unacknowledged"
        writer.rollback()
        wait_for(lambda: index_state(yesterday) is True, timeout=60)
    finally:
        writer.close()
        watcher.close()
        worker.terminate()
        worker.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_one_scheduled_build_runs_at_a_time_newest_day_first():
    """A backlog of days (an upgrade, a long outage of the workers) must not hold every
    process of the jobs worker for hours: while one build runs, another day's answers "busy"
    at once; the maintenance task hands the days out newest first."""
    from noc.timeseries.maintenance import maintain_all

    maintain(kept("off"))
    partitions.ensure(LOG_LINES, today() - timedelta(days=2), today())  # two closed days
    scheduled = []
    maintain_all(schedule_index_build=lambda *args: scheduled.append(args))
    days = [partitions.partition_name(LOG_LINES, today() - timedelta(days=n)) for n in (1, 2)]
    names = [args[1] for args in scheduled]
    assert names[:2] == days  # yesterday, then the day before
    yesterday, before = (
        next(p for p in partitions.existing(LOG_LINES) if p.name == name) for name in days
    )
    other = raw_connection()  # another worker's build holds the lock
    try:
        other.execute("SELECT pg_advisory_lock(%s, 0)", [partitions.BUILDS_LOCK_SPACE])
        assert build_task(before) == "busy"
        assert index_state(before) is None
        other.execute("SELECT pg_advisory_unlock(%s, 0)", [partitions.BUILDS_LOCK_SPACE])
        assert build_task(before) == "built"
    finally:
        other.close()
    assert build_task(yesterday) == "built"  # the lock was let go
