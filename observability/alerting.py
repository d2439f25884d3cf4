"""Alert rules' reads: the value of every series each rule selects, all rules of one
aggregation in one statement, from the raw points of the rules' windows (exact at any window
up to a day; the points table's primary key serves each series' time range, and the oldest
window bounds the partitions read).
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection

from observability.choices import Aggregation, Condition

AGGREGATES = {
    Aggregation.AVG: "avg(p.value)",
    Aggregation.SUM: "sum(p.value)",
    Aggregation.MIN: "min(p.value)",
    Aggregation.MAX: "max(p.value)",
    Aggregation.COUNT: "count(*)::float8",
    Aggregation.LAST: "(array_agg(p.value ORDER BY p.time DESC))[1]",
    Aggregation.P95: "percentile_cont(0.95) WITHIN GROUP (ORDER BY p.value)",
}

READ = """
    WITH r AS (
        SELECT * FROM unnest(%s::bigint[], %s::varchar[], %s::jsonb[], %s::bigint[], %s::int[])
            AS r(rule_id, metric, match, application_id, window_s)
    )
    SELECT r.rule_id, s.application_id, a.slug, s.labels, {aggregate}
    FROM r
    JOIN observability_metricseries s
      ON s.name = r.metric AND s.labels @> r.match
     AND (r.application_id IS NULL OR s.application_id = r.application_id)
    JOIN observability_application a ON a.id = s.application_id
    JOIN observability_metricpoint p
      ON p.series_id = s.id AND p.time <= %s AND p.time > %s
     AND p.time > %s::timestamptz - make_interval(secs => r.window_s)
    GROUP BY r.rule_id, s.id, a.slug
"""


@dataclass
class Reading:
    """One label set's value for one rule (None: no point in the window)."""

    labels: dict[str, str] = field(default_factory=dict)
    value: float | None = None


def fingerprint(rule_id: int, labels: dict[str, str]) -> str:
    text = json.dumps([rule_id, sorted(labels.items())], separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def read(rules: list, now: datetime) -> dict[int, dict[str, Reading]]:
    """{rule id: {fingerprint: Reading}} for the series with points in each rule's window.
    An `absent` rule gets one reading (no labels) whose value is the number of points its
    selector found, or None when there was none."""
    by_aggregation: dict[str, list] = defaultdict(list)
    for rule in rules:
        aggregation = Aggregation.COUNT if rule.condition == Condition.ABSENT else rule.aggregation
        by_aggregation[aggregation].append(rule)
    readings: dict[int, dict[str, Reading]] = {rule.id: {} for rule in rules}
    absent = {rule.id for rule in rules if rule.condition == Condition.ABSENT}
    for aggregation, group in by_aggregation.items():
        for rule_id, _app_id, slug, labels, value in _read_group(aggregation, group, now):
            if rule_id in absent:
                reading = readings[rule_id].setdefault(fingerprint(rule_id, {}), Reading())
                reading.value = (reading.value or 0) + value
                continue
            # Django's psycopg set-up leaves jsonb as text on raw cursors.
            labels = json.loads(labels) if isinstance(labels, str) else labels
            series_labels = {"application": slug, **labels}
            readings[rule_id][fingerprint(rule_id, series_labels)] = Reading(series_labels, value)
    for rule_id in absent:
        readings[rule_id].setdefault(fingerprint(rule_id, {}), Reading())
    return readings


def _read_group(aggregation: str, rules: list, now: datetime) -> list[tuple]:
    oldest = now - timedelta(seconds=max(rule.window_seconds for rule in rules))
    sql = READ.format(aggregate=AGGREGATES[aggregation])
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [rule.id for rule in rules],
                [rule.metric for rule in rules],
                [json.dumps(rule.match_labels or {}) for rule in rules],
                [rule.application_id for rule in rules],
                [rule.window_seconds for rule in rules],
                now,
                oldest,
                now,
            ],
        )
        return cursor.fetchall()
