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
def test_existing_channels_keep_hearing_of_slo_tickets_and_lose_it_when_unmigrated():
    old = migrate(BEFORE)
    channel = old.get_model("incidents", "NotificationChannel").objects.create(
        name="team", kind="webhook", url="https://hooks.example.test/", events=["opened"]
    )
    try:
        new = migrate(AFTER)
        Channel = new.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == ["opened", "slo_ticket"]
        Delivery = new.get_model("incidents", "NotificationDelivery")
        assert Delivery._meta.get_field("notice").default is dict

        old = migrate(BEFORE)
        Channel = old.get_model("incidents", "NotificationChannel")
        assert Channel.objects.get(pk=channel.pk).events == ["opened"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
