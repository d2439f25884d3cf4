"""What the daily and 10-minute check rollups (native only, built on the hourly and per-minute
ones) share: the beat task, the maintenance and the status list them, and nothing that lists
the time-series tables fails where one of them does not exist."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.db import connection

from noc.models import RollupWatermark
from noc.timeseries import backend
from noc.timeseries.maintenance import maintain_all
from noc.timeseries.rollups import ROLLUPS, is_native
from noc.timeseries.status import report
from services import actions
from services.tests.fixtures import refresh_rollups
from services.timeseries import CHECK_ROLLUP_10MIN, CHECK_ROLLUP_DAILY

pytestmark = pytest.mark.django_db
BUILT_ON_OTHERS = [CHECK_ROLLUP_DAILY, CHECK_ROLLUP_10MIN]


@pytest.fixture(autouse=True)
def _native():
    if not all(is_native(rollup) for rollup in BUILT_ON_OTHERS):
        pytest.skip("the daily and 10-minute rollups exist on the native backend only")


@pytest.mark.django_db(transaction=True)  # the task closes the connection when it ends
@pytest.mark.parametrize("rollup", BUILT_ON_OTHERS, ids=lambda r: r.name)
def test_it_is_listed_by_the_status_and_the_maintenance(capsys, rollup):
    from noc.tasks import rollups_refresh, timeseries_maintain

    assert rollup.name in rollups_refresh()  # refreshed by the beat task with the others
    assert timeseries_maintain()[rollup.name]["backend"] == backend.NATIVE
    call_command("timeseries_status")
    out = capsys.readouterr().out
    assert f"{rollup.name}: native," in out
    assert f"  {rollup.name}: native table" in out


@pytest.mark.parametrize("rollup", BUILT_ON_OTHERS, ids=lambda r: r.name)
def test_everything_that_lists_the_tables_passes_over_one_not_created(make_service, rollup):
    """On TimescaleDB these rollups are not created (native only); nor are they on an
    installation whose code is deployed before their migration runs. Dropped here (in the
    test's transaction) to stand for both: nothing refreshes, maintains or deletes from it."""
    service = make_service()
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {rollup.name}")
    source = ROLLUPS[rollup.source]
    assert not is_native(rollup)  # what the beat task asks of each rollup
    assert is_native(source)
    refresh_rollups()
    assert RollupWatermark.objects.filter(name=source.name).exists()
    assert not RollupWatermark.objects.filter(name=rollup.name).exists()
    assert maintain_all()[rollup.name] == {"backend": None}
    _, tables, found = report()
    assert [t.backend for t in tables if t.table == rollup.name] == [None]
    assert [r.kind for r in found if r.name == rollup.name] == ["missing"]
    actions.service_delete(actor=None, service=service)
