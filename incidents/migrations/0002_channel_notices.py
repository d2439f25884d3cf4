"""Notices without an incident (SLO ticket alerts) become deliveries with retries.

Adding `notice` with a constant default is a catalog-only change on PostgreSQL 11+ (no table
rewrite); the default stays in the database, so the previous release's inserts keep working
while a deploy rolls. Channels that exist already subscribe to SLO ticket notices, which they all received
before this migration; unmigrating takes the subscription away again.
"""

import django.contrib.postgres.fields
from django.db import migrations, models
from django.db.models import Value

import incidents.models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="notificationdelivery",
            name="notice",
            field=models.JSONField(
                blank=True, default=dict, db_default=Value({}, models.JSONField())
            ),
        ),
        # Unmigrating drops `notice`: the deliveries that carry one would read as test sends to
        # the code before, so they go first (no-op forwards).
        migrations.RunSQL(
            sql=migrations.RunSQL.noop,
            # Django's foreign keys are deferred: check them now, or dropping the column next
            # fails on the pending trigger events.
            reverse_sql="""
                DELETE FROM incidents_deliveryattempt WHERE delivery_id IN (
                    SELECT id FROM incidents_notificationdelivery
                     WHERE event_id IS NULL AND NOT is_test);
                DELETE FROM incidents_notificationdelivery
                 WHERE event_id IS NULL AND NOT is_test;
                SET CONSTRAINTS ALL IMMEDIATE;
            """,
        ),
        migrations.AlterField(
            model_name="notificationchannel",
            name="events",
            field=django.contrib.postgres.fields.ArrayField(
                base_field=models.CharField(
                    choices=[
                        ("opened", "Opened"),
                        ("status_changed", "Status changed"),
                        ("acknowledged", "Acknowledged"),
                        ("assigned", "Assigned"),
                        ("comment", "Comment"),
                        ("check_failed", "Check failed"),
                        ("check_recovered", "Check recovered"),
                        ("notification_sent", "Notification sent"),
                        ("notification_failed", "Notification failed"),
                        ("reopened", "Reopened"),
                        ("resolved", "Resolved"),
                        ("closed", "Closed"),
                        ("severity_changed", "Severity changed"),
                        ("notes_updated", "Notes updated"),
                        ("slo_ticket", "SLO ticket alert"),
                    ],
                    max_length=24,
                ),
                default=incidents.models.default_events,
                size=None,
            ),
        ),
        migrations.RunSQL(
            sql="""
                UPDATE incidents_notificationchannel
                   SET events = array_append(events, 'slo_ticket')
                 WHERE NOT ('slo_ticket' = ANY(events))
            """,
            # A channel left with no event (it had chosen slo_ticket alone) gets the defaults
            # of the code before rather than an empty list that code refuses.
            reverse_sql="""
                UPDATE incidents_notificationchannel
                   SET events = CASE
                       WHEN events = ARRAY['slo_ticket']::varchar(24)[]
                       THEN ARRAY['opened', 'acknowledged', 'resolved', 'reopened']::varchar(24)[]
                       ELSE array_remove(events, 'slo_ticket') END
                 WHERE 'slo_ticket' = ANY(events)
            """,
        ),
    ]
