"""The slos migrations that move data, on populated tables, forward and back."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from noc.timeseries import backend, partitions
from slos.timeseries import SLO_HISTORY

BEFORE = [("slos", "0001_initial")]
AFTER = [("slos", "0002_error_rate_target_is_a_maximum")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def history_targets() -> dict[str, float]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT slo_id, target FROM slos_slostatus ORDER BY slo_id")
        return dict(cursor.fetchall())


@pytest.mark.django_db(transaction=True)
def test_error_rate_targets_become_maximums_forward_and_back(make_service):
    service = make_service(id="web")
    old = migrate(BEFORE)
    SLO = old.get_model("slos", "SLO")
    now = timezone.now()
    if backend.table_backend_of(connection, SLO_HISTORY.table) == backend.NATIVE:
        partitions.ensure(SLO_HISTORY, now, now + timedelta(minutes=1))  # a hypertable needs none
    written = {
        "as-success": ("error_rate", "99.9"),  # as the API documented: 0.1 % errors at most
        "as-maximum": ("error_rate", "1"),  # as people say it: 1 % errors at most
        "half": ("error_rate", "50"),
        "availability": ("availability", "99.9"),
    }
    for slo_id, (sli_type, target) in written.items():
        SLO.objects.create(
            id=slo_id, name=slo_id, service_id=service.id, sli_type=sli_type,
            target=Decimal(target), compliant=True, current_value=0.5, calculated_at=now,
        )  # fmt: skip
        with connection.cursor() as cursor:
            cursor.execute(
                'INSERT INTO slos_slostatus (slo_id, time, sli_type, "window", target, good, '
                "total, budget_total_minutes, budget_remaining_minutes, budget_used_minutes, "
                "budget_used_percent, violation_risk, minutes_without_data) "
                "VALUES (%s, %s, %s, '30d', %s, 1, 1, 1, 1, 0, 0, 'none', 0)",
                [slo_id, now, sli_type, float(target)],
            )
    try:
        new = migrate(AFTER)
        SLO = new.get_model("slos", "SLO")
        targets = dict(SLO.objects.values_list("id", "target"))
        assert targets == {
            "as-success": Decimal("0.1"), "as-maximum": Decimal("1"), "half": Decimal("50"),
            "availability": Decimal("99.9"),
        }  # fmt: skip
        # No verdict judged the old way is left on an error-rate SLO; the others keep theirs.
        assert SLO.objects.get(id="as-maximum").compliant is None
        assert SLO.objects.get(id="availability").compliant is True
        assert history_targets() == {
            "as-success": 0.1, "as-maximum": 1, "half": 50, "availability": 99.9,
        }  # fmt: skip

        old = migrate(BEFORE)
        # Back: each error-rate target as the success percent the code before judges the same.
        targets = dict(old.get_model("slos", "SLO").objects.values_list("id", "target"))
        assert targets == {
            "as-success": Decimal("99.9"), "as-maximum": Decimal("99"), "half": Decimal("50"),
            "availability": Decimal("99.9"),
        }  # fmt: skip
        assert history_targets() == {
            "as-success": 99.9, "as-maximum": 99, "half": 50, "availability": 99.9,
        }  # fmt: skip
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_going_back_before_metric_slis_deletes_metric_slos_and_keeps_the_others(make_service):
    service = make_service(id="web")
    new = migrate([("slos", "0006_metric_slis")])
    SLO = new.get_model("slos", "SLO")
    now = timezone.now()
    if backend.table_backend_of(connection, SLO_HISTORY.table) == backend.NATIVE:
        partitions.ensure(SLO_HISTORY, now, now + timedelta(minutes=1))
    selector = {"application": "shop", "name": "requests_total"}
    SLO.objects.create(
        id="checks", name="checks", service_id=service.id, sli_type="availability",
        target=Decimal("99.9"),
    )  # fmt: skip
    SLO.objects.create(
        id="events", name="events", sli_type="ratio", target=Decimal("99"),
        good_metric=selector, total_metric=selector,
    )  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            'INSERT INTO slos_slostatus (slo_id, time, sli_type, "window", target, good, '
            "total, budget_total_minutes, budget_remaining_minutes, budget_used_minutes, "
            "budget_used_percent, violation_risk, minutes_without_data) "
            "VALUES ('events', %s, 'ratio', '30d', 99, 1, 1, 1, 1, 0, 0, 'none', 0)",
            [now],
        )
    try:
        old = migrate([("slos", "0005_kept_sli_minute_sums")])
        assert list(old.get_model("slos", "SLO").objects.values_list("id", flat=True)) == ["checks"]
        assert history_targets() == {}
        migrate([("slos", "0006_metric_slis")])
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
