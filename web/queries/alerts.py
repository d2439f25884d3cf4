"""Reads of the dashboard's "Alerts firing" section: the active alerts of the observability
app's rules, within the dashboard's tag and critical filters, in one query (SQL written here
into rows of what the section shows: through the ORM, building the query was most of its
cost)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection

from observability.choices import AlertStatus
from observability.queries import SEVERITY_ORDER
from services.choices import Severity
from web.queries.dashboard import Filters

LIMIT = 20
SEVERITY_LABELS = dict(Severity.choices)


@dataclass(frozen=True)
class AlertRow:
    """An active alert as the section shows it, and `total`: how many are active within the
    filters."""

    pk: int
    severity: str
    labels: dict[str, Any]
    started_at: datetime
    fired_at: datetime | None
    value: float | None
    last_value: float | None
    acknowledged_at: datetime | None
    silenced_until: datetime | None
    rule_name: str
    service_id: str | None  # the rule's service, if it is about one
    service_name: str | None
    total: int

    @property
    def severity_label(self) -> str:
        return SEVERITY_LABELS.get(self.severity, self.severity)


# By severity, then newest (observability.queries.alerts_by_severity's order among active
# alerts). A tag or critical filter keeps the alerts of rules about a service it keeps.
ALERTS_FIRING_SQL = """
    SELECT a.id, a.severity, a.labels, a.started_at, a.fired_at, a.value, a.last_value,
           a.acknowledged_at, a.silenced_until, r.name, r.service_id, s.name, count(*) OVER ()
    FROM observability_alert a
    JOIN observability_alertrule r ON r.id = a.rule_id
    LEFT JOIN services_service s ON s.id = r.service_id
    WHERE a.status = %(active)s {scope}
    ORDER BY array_position(%(order)s::varchar[], a.severity), a.started_at DESC, a.id DESC
    LIMIT %(limit)s
"""


def alerts_firing(filters: Filters) -> list[AlertRow]:
    """The first LIMIT active alerts by severity then newest, each with `total`. With a tag
    or critical filter, only the alerts of rules about a service the filter keeps (a rule
    about no service belongs to no tag)."""
    scope, params = filters.scope_sql("s")
    params.update(active=AlertStatus.ACTIVE.value, order=list(SEVERITY_ORDER), limit=LIMIT)
    with connection.cursor() as cursor:
        cursor.execute(ALERTS_FIRING_SQL.format(scope=scope), params)
        rows = cursor.fetchall()
    # Django has psycopg hand jsonb over as text (JSONField parses it): parsed here.
    return [
        AlertRow(pk, severity, json.loads(labels), *rest) for pk, severity, labels, *rest in rows
    ]
