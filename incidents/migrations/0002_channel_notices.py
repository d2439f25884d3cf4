"""Notices without an incident (SLO ticket alerts) become deliveries with retries.

Adding `notice` with a constant default is a catalog-only change on PostgreSQL 11+ (no table
rewrite). Channels that exist already subscribe to SLO ticket notices, which they all received
before this migration; unmigrating takes the subscription away again.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

import incidents.models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="notificationdelivery",
            name="notice",
            field=models.JSONField(blank=True, default=dict),
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
            reverse_sql="""
                UPDATE incidents_notificationchannel
                   SET events = array_remove(events, 'slo_ticket')
                 WHERE 'slo_ticket' = ANY(events)
            """,
        ),
    ]
