"""The incidents migrations that move data, on a populated table, forward and back."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("incidents", "0001_initial")]
AFTER = [("incidents", "0002_channel_notices")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_channels_notices_forward_and_back_on_populated_tables():
    old = migrate(BEFORE)
    channel = old.get_model("incidents", "NotificationChannel").objects.create(
        name="team", kind="webhook", url="https://hooks.example.test/", events=["opened"]
    )
    try:
        new = migrate(AFTER)
        Channel = new.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == ["opened", "slo_ticket"]
        only_tickets = Channel.objects.create(
            name="tickets", kind="webhook", url="https://t.example.test/", events=["slo_ticket"]
        )
        # The previous release, still running during a deploy, inserts without `notice`.
        with connection.cursor() as cursor:
            cursor.execute(
                "INSERT INTO incidents_notificationdelivery (channel_id, status, attempts, "
                "last_error, is_test) VALUES (%s, 'pending', 0, '', true) RETURNING notice",
                [channel.pk],
            )
            assert cursor.fetchone()[0] in ({}, "{}")
        Delivery = new.get_model("incidents", "NotificationDelivery")
        notice = Delivery.objects.create(
            channel_id=channel.pk, status="retrying", notice={"kind": "slo_ticket"}
        )
        new.get_model("incidents", "DeliveryAttempt").objects.create(delivery=notice, ok=False)

        old = migrate(BEFORE)
        Channel = old.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == ["opened"]
        assert Channel.objects.get(pk=only_tickets.pk).events == [
            "opened", "acknowledged", "resolved", "reopened",
        ]  # fmt: skip
        # The notice is gone (it would read as a test send to the code before); the test stays.
        Delivery = old.get_model("incidents", "NotificationDelivery")
        assert list(Delivery.objects.values_list("is_test", flat=True)) == [True]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_alert_notices_forward_and_back_on_populated_tables():
    old = migrate([("incidents", "0005_public_updates")])
    Channel = old.get_model("incidents", "NotificationChannel")
    channel = Channel.objects.create(
        name="team", kind="webhook", url="https://hooks.example.test/", events=["opened"]
    )
    try:
        new = migrate([("incidents", "0006_alert_notices")])
        Channel = new.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == [
            "opened", "alert_firing", "alert_resolved",
        ]  # fmt: skip
        only_alerts = Channel.objects.create(
            name="alerts", kind="webhook", url="https://a.example.test/", events=["alert_firing"]
        )
        Delivery = new.get_model("incidents", "NotificationDelivery")
        firing = Delivery.objects.create(
            channel_id=channel.pk, status="retrying", notice={"kind": "alert_firing"}
        )
        new.get_model("incidents", "DeliveryAttempt").objects.create(delivery=firing, ok=False)
        Delivery.objects.create(channel_id=channel.pk, status="sent", notice={"kind": "slo_ticket"})

        old = migrate([("incidents", "0005_public_updates")])
        Channel = old.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == ["opened"]
        assert Channel.objects.get(pk=only_alerts.pk).events == [
            "opened", "acknowledged", "resolved", "reopened", "slo_ticket",
        ]  # fmt: skip
        Delivery = old.get_model("incidents", "NotificationDelivery")
        assert [d.notice["kind"] for d in Delivery.objects.all()] == ["slo_ticket"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
