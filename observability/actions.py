"""Writes of the observability app: applications, ingest keys, and metric ingestion.

`metric_points_ingest` is the one entry point for metric points, whatever decoded them (the
JSON API, OTLP, collectors): it applies the limits, finds or creates the series of the batch
in bulk and writes the points with one binary COPY, in one transaction.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.actions import audit_create, audit_delete, audit_record, audit_update
from accounts.audit import snapshot
from accounts.choices import AuditAction
from incidents.choices import NoticeKind
from noc.timeseries.rollups import mark_dirty
from observability import counters, series, storage
from observability.choices import OPEN_ALERT_STATUSES, AlertStatus, Condition, Rejection
from observability.models import Alert, AlertRule, Application, IngestKey
from observability.points import (
    FUTURE_US,
    IngestResult,
    Limits,
    MetricPoint,
    from_us,
    series_problem,
    to_us,
)
from observability.timeseries import HOURLY, METRIC_POINTS, METRICS_DAILY, METRICS_HOURLY

# --- applications and ingest keys --------------------------------------------------------------


@transaction.atomic
def application_create(*, actor, **fields: Any) -> tuple[Application, IngestKey, str]:
    """Create an application with its first ingest key. Returns the key in full, which is
    never retrievable again."""
    application = Application(**fields)
    application.full_clean()
    application.save(force_insert=True)
    audit_create(actor=actor, instance=application)
    ingest_key, key = ingest_key_create(actor=actor, application=application, name="default")
    return application, ingest_key, key


@transaction.atomic
def application_update(*, actor, application: Application, **fields: Any) -> Application:
    before = snapshot(Application.objects.select_for_update().get(pk=application.pk))
    for name, value in fields.items():
        setattr(application, name, value)
    application.full_clean()
    application.save()
    audit_update(actor=actor, instance=application, before=before)
    return application


@transaction.atomic
def application_delete(*, actor, application: Application) -> None:
    """Deletes the application, its keys and its series. Its points and rollup rows can no
    longer be reached and leave with retention (deleting millions of rows here would hold a
    request for minutes)."""
    audit_delete(actor=actor, instance=application)
    application.delete()


@transaction.atomic
def ingest_key_create(*, actor, application: Application, name: str = "default") -> tuple[
    IngestKey, str
]:  # fmt: skip
    prefix, key = IngestKey.generate()
    ingest_key = IngestKey.objects.create(
        application=application,
        name=name,
        prefix=prefix,
        hashed_key=IngestKey.hash(key),
        created_by=actor if actor is not None and actor.is_authenticated else None,
    )
    audit_create(actor=actor, instance=ingest_key)
    return ingest_key, key


@transaction.atomic
def ingest_key_revoke(*, actor, ingest_key: IngestKey) -> IngestKey:
    if ingest_key.revoked_at is None:
        before = snapshot(ingest_key)
        ingest_key.revoked_at = timezone.now()
        ingest_key.save(update_fields=["revoked_at"])
        audit_update(actor=actor, instance=ingest_key, before=before)
    return ingest_key


def ingest_key_touch(*, ingest_key: IngestKey) -> None:
    """Record use at most once a minute per key, so ingestion is not a write per request."""
    now = timezone.now()
    threshold = now - settings.API_KEY_LAST_USED_RESOLUTION
    if ingest_key.last_used_at is None or ingest_key.last_used_at < threshold:
        IngestKey.objects.filter(pk=ingest_key.pk, revoked_at__isnull=True).exclude(
            last_used_at__gte=threshold
        ).update(last_used_at=now)
        ingest_key.last_used_at = now


# --- metric ingestion ---------------------------------------------------------------------------


@dataclass
class _Group:
    """The points of one series in a batch: {time_us: value}, the last value of a time wins."""

    problem: tuple[str, str] | None
    kind: str
    unit: str
    points: dict[int, float] = field(default_factory=dict)


def metric_points_ingest(
    *,
    application: Application,
    points: Iterable[MetricPoint],
    now_us: int | None = None,
    limits: Limits | None = None,
) -> IngestResult:
    """Store a batch of points for `application`, in one transaction.

    Points breaking a limit (name or label syntax, label count or length, NaN/Inf, older than
    the retention, more than 10 minutes ahead, or a new series beyond the application's series
    limit) are counted in the result by reason (`observability.choices.Rejection`) and not
    stored; the rest are. Series are looked up in a per-process cache, then in one statement;
    new ones are created in one more. Points go in with one binary COPY. Writing the same
    point (series and time) twice stores it once. Returns an `IngestResult`.
    """
    limits = limits or Limits.from_settings()
    now_us = now_us if now_us is not None else to_us(timezone.now())
    result = IngestResult()
    groups, total = _group(points, now_us, limits, result)
    ids, misses = {}, []
    app_id = application.pk
    for key, group in groups.items():
        series_id = series.cached(app_id, key)
        if series_id is None:
            misses.append(series.NewSeries(key, group.kind, group.unit))
        else:
            ids[key] = series_id
    if not groups:
        result.accepted = total - result.rejected
        counters.count(counters.METRICS, rejections=result.rejections)
        return result
    storage.ensure_days(METRIC_POINTS, _days(groups))
    with transaction.atomic():
        if misses:
            found, result.series_created = series.resolve(app_id, misses, limits.max_series)
            ids.update(found)
            transaction.on_commit(lambda: series.remember(app_id, found))
        rows = []
        for key, group in groups.items():
            series_id = ids.get(key)
            if series_id is None:
                count = len(group.points)
                result.reject(
                    Rejection.CARDINALITY,
                    f"{key[0]}: new series refused, the application has reached its limit of "
                    f"{limits.max_series} series",
                    count,
                )
                continue
            rows.append((series_id, group.points))
        if rows:
            storage.write_points(METRIC_POINTS.table, storage.copy_payload(rows))
            _mark_rollups_dirty(rows, now_us)
    result.accepted = total - result.rejected
    counters.count(counters.METRICS, accepted=result.accepted, rejections=result.rejections)
    return result


def metric_otlp_ingest(
    *, application: Application, request, now_us: int | None = None
) -> IngestResult:
    """Store the points of an OTLP `ExportMetricsServiceRequest` (decoded by
    `observability.otlp.metrics`) for `application`, as `metric_points_ingest` does."""
    from observability.otlp.metrics import points_of

    return metric_points_ingest(application=application, points=points_of(request), now_us=now_us)


# Series identities (with the limits they were judged by) already found valid in this process:
# a collector or an exporter sends the same series every batch, and checking each name and
# label again cost a large share of ingestion's CPU. Bounded: forgotten when it grows past
# VALID_SERIES_MAX.
_VALID_SERIES: set = set()
VALID_SERIES_MAX = 200_000


def _remember_valid(identity) -> None:
    if len(_VALID_SERIES) >= VALID_SERIES_MAX:
        _VALID_SERIES.clear()
    _VALID_SERIES.add(identity)


def _group(
    points: Iterable[MetricPoint], now_us: int, limits: Limits, result: IngestResult
) -> tuple[dict, int]:
    """Sort a batch into series, checking each series' identity once and each point's value
    and time. The hot loop of ingestion: no objects per point beyond the dict entry."""
    oldest, newest = now_us - limits.retention_us, now_us + FUTURE_US
    groups: dict[series.SeriesKey, _Group] = {}
    total = 0
    isfinite = math.isfinite
    for name, labels, value, time_us, kind, unit in points:
        total += 1
        key = (name, tuple(sorted(labels.items())) if labels else ())
        group = groups.get(key)
        if group is None:
            known = (key, limits.max_labels, limits.max_label_length) in _VALID_SERIES
            problem = None if known else series_problem(name, labels, limits)
            if problem is None and not known:
                _remember_valid((key, limits.max_labels, limits.max_label_length))
            group = groups[key] = _Group(problem, kind, unit)
        if group.problem is not None:
            result.reject(*group.problem)
        elif not isfinite(value):
            result.reject(Rejection.NON_FINITE, f"{name}: value {value} is not finite")
        elif time_us is None:
            group.points[now_us] = value
        elif time_us < oldest:
            result.reject(Rejection.TOO_OLD, f"{name}: time is older than the retention")
        elif time_us > newest:
            result.reject(Rejection.TOO_NEW, f"{name}: time is more than 10 minutes ahead")
        else:
            group.points[time_us] = value
    return {key: group for key, group in groups.items() if group.points}, total


def _days(groups: dict) -> set[int]:
    day = storage.DAY_US
    lows = [min(group.points) for group in groups.values()]
    highs = [max(group.points) for group in groups.values()]
    low, high = min(lows) // day, max(highs) // day
    if high - low <= 2:
        return set(range(low, high + 1))
    return {t // day for group in groups.values() for t in group.points}


def _mark_rollups_dirty(rows: list, now_us: int) -> None:
    """Points older than the newest settled rollup bucket make their buckets stale (native;
    TimescaleDB tracks this itself). Live data never is, so this costs nothing normally."""
    oldest = min(min(points) for _, points in rows)
    settled_hour = (now_us - int(METRICS_HOURLY.settle.total_seconds() * 1e6)) // 3_600_000_000
    if oldest // 3_600_000_000 >= settled_hour:
        return
    mark_dirty((HOURLY, METRICS_DAILY.name), from_us(oldest))


# --- traces ------------------------------------------------------------------------------------


def spans_otlp_ingest(
    *, application: Application, request, now_us: int | None = None
) -> IngestResult:
    """Store the spans of an OTLP `ExportTraceServiceRequest` for `application` with one binary
    COPY, in one transaction. A span the limits refuse refuses the whole request (IngestError,
    nothing written); spans whose start is not kept are counted in the result (OTLP's partial
    success). Sending the same batch twice stores each span once."""
    from observability.otlp.traces import spans_of
    from observability.traces.store import ensure_partitions, write_spans

    now_us = now_us if now_us is not None else to_us(timezone.now())
    result = IngestResult()
    records = spans_of(request, application=application, now_us=now_us, result=result)
    if records:
        ensure_partitions(records)
        with transaction.atomic():
            write_spans(records)
    result.accepted = len(records)
    counters.count(counters.SPANS, accepted=result.accepted, rejections=result.rejections)
    return result


# --- logs --------------------------------------------------------------------------------------


def log_lines_ingest(
    *, application: Application, lines: list, now_us: int | None = None
) -> IngestResult:
    """Store a decoded JSON batch of log lines (`observability.logs.decode`) for `application`.
    A malformed line refuses the whole batch (IngestError); lines whose time is not kept are
    counted in the result. The lines are stored (in PostgreSQL, or in Elasticsearch or its
    outbox) before this returns."""
    from observability.logs.decode import records_of

    now_us = now_us if now_us is not None else to_us(timezone.now())
    result = IngestResult()
    records = records_of(
        lines, application_id=application.pk, application=application.slug, now_us=now_us,
        result=result,
    )  # fmt: skip
    log_records_write(records=records)
    result.accepted = len(records)
    counters.count(counters.LOGS, accepted=result.accepted, rejections=result.rejections)
    return result


def log_otlp_ingest(
    *, application: Application, request, now_us: int | None = None
) -> IngestResult:
    """Store the log records of an OTLP `ExportLogsServiceRequest` for `application`; records
    whose time is not kept are counted in the result (OTLP's partial success)."""
    from observability.otlp.logs import records_of

    now_us = now_us if now_us is not None else to_us(timezone.now())
    result = IngestResult()
    records = records_of(request, application=application, now_us=now_us, result=result)
    log_records_write(records=records)
    result.accepted = len(records)
    counters.count(counters.LOGS, accepted=result.accepted, rejections=result.rejections)
    return result


def log_records_write(*, records: list) -> None:
    """The one write path of log lines, whatever decoded them (JSON, OTLP, LOG_SHIP)."""
    from observability.logs.store import log_store

    if not records:
        return
    with transaction.atomic():
        log_store().write(records)


def log_outbox_drain() -> int:
    """Send what waits in the outbox to Elasticsearch; returns the lines stored."""
    from observability.logs.store import ElasticsearchWithOutbox, log_store

    store = log_store()
    return store.drain() if isinstance(store, ElasticsearchWithOutbox) else 0


def log_retention_apply() -> int:
    """Elasticsearch: delete daily indices past LOG_RETENTION_DAYS (PostgreSQL partitions go
    with the time-series maintenance task)."""
    from observability.logs.store import log_store

    return log_store().drop_expired()


def application_for_own_logs() -> Application:
    """The application the project's own logs are stored under (LOG_SHIP=1), made once."""
    from observability.logs.shipping import APPLICATION

    application, _created = Application.objects.get_or_create(
        slug=APPLICATION,
        defaults={"name": "NOC itself", "description": "The project's own logs (LOG_SHIP)."},
    )
    return application


# --- alert rules and alerts ---------------------------------------------------------------------

ALERTS_LOCK = 728_021  # pg advisory lock key: one alert evaluation at a time across workers


@transaction.atomic
def alert_rule_create(*, actor, channels=(), **fields: Any) -> AlertRule:
    rule = AlertRule(**fields)
    rule.full_clean()
    rule.save(force_insert=True)
    rule.channels.set(channels)
    audit_create(actor=actor, instance=rule)
    return rule


@transaction.atomic
def alert_rule_update(*, actor, rule: AlertRule, channels=None, **fields: Any) -> AlertRule:
    before = snapshot(AlertRule.objects.select_for_update().get(pk=rule.pk))
    for name, value in fields.items():
        setattr(rule, name, value)
    rule.full_clean()
    rule.save()
    if channels is not None:
        rule.channels.set(channels)
    audit_update(actor=actor, instance=rule, before=before)
    return rule


@transaction.atomic
def alert_rule_delete(*, actor, rule: AlertRule) -> None:
    """Deletes the rule and its alerts; incidents they opened stay, with their timelines."""
    audit_delete(actor=actor, instance=rule)
    rule.delete()


@transaction.atomic
def alert_acknowledge(*, alert: Alert, actor) -> Alert:
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = timezone.now(), _person(actor)
        alert.save(update_fields=["acknowledged_at", "acknowledged_by"])
        audit_record(actor=actor, action=AuditAction.ACTION, instance=alert, verb="acknowledge")
    return alert


@transaction.atomic
def alert_silence(*, alert: Alert, actor, minutes: int) -> Alert:
    """No notification of this alert until the silence ends (it is still evaluated)."""
    alert = Alert.objects.select_for_update().get(pk=alert.pk)
    before = alert.silenced_until
    alert.silenced_until = timezone.now() + timedelta(minutes=minutes) if minutes else None
    alert.save(update_fields=["silenced_until"])
    audit_record(
        actor=actor, action=AuditAction.ACTION, instance=alert, verb="silence",
        changes={"silenced_until": [_iso(before), _iso(alert.silenced_until)]},
    )  # fmt: skip
    return alert


def _person(actor):
    return actor if actor is not None and getattr(actor, "is_authenticated", False) else None


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


def alerts_evaluate(*, now=None) -> int:
    """Evaluate every enabled rule: one read per aggregation (observability/alerting.py), then
    each label set's alert steps pending → active → resolved. Returns the number of rules
    evaluated, or -1 when another worker holds the evaluation (running it twice at once would
    only repeat work; the partial unique constraint keeps one open alert per fingerprint in
    any case)."""
    from observability import alerting

    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [ALERTS_LOCK])
            if not cursor.fetchone()[0]:
                return -1
        rules = list(
            AlertRule.objects.filter(enabled=True)
            .select_related("service")
            .prefetch_related("channels")
        )
        readings = alerting.read(rules, now)
        open_alerts = {
            (a.rule_id, a.fingerprint): a
            for a in Alert.objects.select_for_update(of=("self",))
            .select_related("rule", "rule__service")
            .filter(status__in=OPEN_ALERT_STATUSES)
        }  # fmt: skip
        touched: list[Alert] = []
        for rule in rules:
            for print_, reading in readings[rule.id].items():
                alert = open_alerts.pop((rule.id, print_), None)
                _alert_step(rule, alert, print_, reading, now, touched)
        for alert in open_alerts.values():  # no data now, or the rule was disabled
            if alert.rule.enabled:
                _alert_step(alert.rule, alert, alert.fingerprint, alerting.Reading(alert.labels),
                            now, touched)  # fmt: skip
            else:
                _alert_resolve(alert, now, reason="the rule is disabled")
        Alert.objects.bulk_update(touched, ["last_value", "last_evaluated_at"])
    return len(rules)


def _alert_step(rule: AlertRule, alert: Alert | None, print_: str, reading, now, touched) -> None:
    breaching = rule.breaches(reading.value)
    if alert is None:
        if breaching:
            _alert_open(rule, print_, reading, now)
        return
    alert.last_value, alert.last_evaluated_at = reading.value, now
    if not breaching:
        if alert.status == AlertStatus.PENDING:
            alert.delete()  # it never fired: nobody heard of it
        else:
            _alert_resolve(alert, now)
    elif alert.status == AlertStatus.PENDING and now - alert.started_at >= timedelta(
        seconds=rule.for_seconds
    ):
        _alert_fire(alert, reading.value, now)
    else:
        touched.append(alert)


def _alert_open(rule: AlertRule, print_: str, reading, now) -> None:
    labels = {**reading.labels, **(rule.labels or {})}
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule, fingerprint=print_, labels=labels, status=AlertStatus.PENDING,
                severity=rule.severity, started_at=now, last_value=reading.value,
                last_evaluated_at=now,
            )  # fmt: skip
    except IntegrityError:
        return  # another evaluation opened it
    alert.rule = rule
    if rule.for_seconds == 0:
        _alert_fire(alert, reading.value, now)


def _alert_fire(alert: Alert, value, now) -> None:
    alert.status, alert.fired_at, alert.value = AlertStatus.ACTIVE, now, value
    alert.save(update_fields=["status", "fired_at", "value", "last_value", "last_evaluated_at"])
    rule = alert.rule
    message = f"{rule.name}: {alert_condition_text(rule, value)}"
    if rule.opens_incident and rule.service_id:
        alert.incident = _alert_incident(alert, message)
        alert.save(update_fields=["incident"])
    _alert_notify(alert, NoticeKind.ALERT_FIRING, f"Alert firing: {rule.name}", message, now)


def _alert_resolve(alert: Alert, now, reason: str = "") -> None:
    alert.status, alert.ended_at = AlertStatus.RESOLVED, now
    alert.last_evaluated_at = now
    alert.save(update_fields=["status", "ended_at", "last_value", "last_evaluated_at"])
    rule = alert.rule
    message = (
        f"{rule.name}: "
        + (reason or "the condition no longer holds")
        + (f" (last value {alert.last_value:g})" if alert.last_value is not None else "")
    )
    if alert.incident_id:
        _alert_incident_resolve(alert, message)
    _alert_notify(alert, NoticeKind.ALERT_RESOLVED, f"Alert resolved: {rule.name}", message, now)


def alert_condition_text(rule: AlertRule, value) -> str:
    if rule.condition == Condition.ABSENT:
        return f"no {rule.metric} point in the last {rule.window_seconds} s"
    operator = Condition(rule.condition).label
    return (
        f"{rule.aggregation}({rule.metric}) over {rule.window_seconds} s is {value:g} "
        f"{operator} {rule.threshold:g}"
    )


def _alert_notify(alert: Alert, kind: str, title: str, message: str, now) -> None:
    from incidents.notifications import notice_plan

    if alert.is_silenced(now):
        return
    rule = alert.rule
    notice_plan(
        kind=kind, service=rule.service, severity=alert.severity, title=title, message=message,
        time=now, channels=list(rule.channels.all()) or None,
        key=f"alert:{rule.pk}:{alert.fingerprint}",
        facts={
            "alert": {
                "id": alert.pk, "status": alert.status, "severity": alert.severity,
                "labels": alert.labels, "value": alert.value, "last_value": alert.last_value,
                "started_at": _iso(alert.started_at), "fired_at": _iso(alert.fired_at),
                "ended_at": _iso(alert.ended_at),
            },
            "rule": {"id": rule.pk, "name": rule.name, "metric": rule.metric},
        },
    )  # fmt: skip


def _alert_incident(alert: Alert, message: str):
    from incidents import actions as incident_actions
    from incidents.choices import EventKind, IncidentSource

    rule = alert.rule
    evidence = {"alert": alert.pk, "rule": rule.pk, "labels": alert.labels, "value": alert.value}
    try:
        return incident_actions.incident_open(
            service=rule.service, source=IncidentSource.ALERT_RULE,
            impact_started_at=alert.started_at, title=f"Alert: {rule.name}"[:200],
            summary=message, severity=alert.severity, dedup_key=f"alert:{alert.pk}",
            evidence=evidence,
        )  # fmt: skip
    except incident_actions.AlreadyActive as active:
        # One active incident per service: the alert joins the incident already open.
        incident_actions.event_record(
            incident=active.existing, kind=EventKind.COMMENT, message=message, data=evidence
        )
        return active.existing


def _alert_incident_resolve(alert: Alert, message: str) -> None:
    """An incident this alert opened resolves with it; one it joined hears about it."""
    from incidents import actions as incident_actions
    from incidents.choices import ACTIVE_STATUSES, EventKind

    incident = alert.incident
    if incident is None or incident.status not in ACTIVE_STATUSES:
        return
    evidence = {"alert": alert.pk, "rule": alert.rule_id, "last_value": alert.last_value}
    if incident.dedup_key == f"alert:{alert.pk}":
        incident_actions.incident_resolve(incident=incident, evidence=evidence)
    else:
        incident_actions.event_record(
            incident=incident, kind=EventKind.COMMENT, message=message, data=evidence
        )
