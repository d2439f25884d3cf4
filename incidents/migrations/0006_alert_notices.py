"""Metric alert notices: channels can subscribe to `alert_firing` and `alert_resolved`; the
channels that exist subscribe to both (new ones do by default). Only the array of choices
changes in Django's state; the data change is one UPDATE of the (small) channel table, undone
by unmigrating, which also removes the alert notices' deliveries the code before would misread.
"""

import django.contrib.postgres.fields
from django.db import migrations, models

import incidents.models


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0005_public_updates"),
    ]

    operations = [
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
                        ("public_update", "Public update"),
                        ("slo_ticket", "SLO ticket alert"),
                        ("alert_firing", "Metric alert firing"),
                        ("alert_resolved", "Metric alert resolved"),
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
                   SET events = events || ARRAY['alert_firing']::varchar(24)[]
                 WHERE NOT ('alert_firing' = ANY(events));
                UPDATE incidents_notificationchannel
                   SET events = events || ARRAY['alert_resolved']::varchar(24)[]
                 WHERE NOT ('alert_resolved' = ANY(events));
            """,
            # A channel left with no event (it had chosen alert events alone) gets the
            # defaults of the code before rather than an empty list that code refuses.
            reverse_sql="""
                DELETE FROM incidents_deliveryattempt WHERE delivery_id IN (
                    SELECT id FROM incidents_notificationdelivery
                     WHERE notice->>'kind' IN ('alert_firing', 'alert_resolved'));
                DELETE FROM incidents_notificationdelivery
                 WHERE notice->>'kind' IN ('alert_firing', 'alert_resolved');
                UPDATE incidents_notificationchannel
                   SET events = array_remove(array_remove(events, 'alert_firing'),
                                             'alert_resolved')
                 WHERE events && ARRAY['alert_firing', 'alert_resolved']::varchar(24)[];
                UPDATE incidents_notificationchannel
                   SET events = ARRAY['opened', 'acknowledged', 'resolved', 'reopened',
                                      'slo_ticket']::varchar(24)[]
                 WHERE cardinality(events) = 0;
                SET CONSTRAINTS ALL IMMEDIATE;
            """,
        ),
    ]
