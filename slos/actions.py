"""Writes of the slos app: configuration, evaluation of every SLO, burn-rate alerts."""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg.errors import UniqueViolation

from accounts.actions import audit_create, audit_delete, audit_update
from accounts.audit import snapshot
from incidents import actions as incident_actions
from incidents.choices import EventKind, IncidentSource, NoticeKind, Severity
from incidents.notifications import notice_plan
from noc.timeseries import partitions
from slos import budget, metric_sli, sli
from slos.choices import AlertSeverity, AlertState, BudgetingMethod
from slos.models import SLO, SLOAlert
from slos.timeseries import SLO_HISTORY

logger = logging.getLogger(__name__)
EVALUATION_LOCK = 728_001  # pg advisory lock key: one evaluation at a time across workers


# --- configuration ----------------------------------------------------------------------------


@transaction.atomic
def slo_create(*, actor, **fields: Any) -> SLO:
    slo = SLO(**fields)
    slo.full_clean()
    slo.save(force_insert=True)
    audit_create(actor=actor, instance=slo)
    return slo


@transaction.atomic
def slo_update(*, actor, slo: SLO, **fields: Any) -> SLO:
    before = snapshot(SLO.objects.select_for_update().get(pk=slo.pk))
    for name, value in fields.items():
        setattr(slo, name, value)
    slo.full_clean()
    slo.save()
    audit_update(actor=actor, instance=slo, before=before)
    return slo


@transaction.atomic
def slo_delete(*, actor, slo: SLO) -> None:
    audit_delete(actor=actor, instance=slo)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM slos_slostatus WHERE slo_id = %s", [slo.pk])
    slo.delete()


# --- evaluation -------------------------------------------------------------------------------


@dataclass
class Evaluation:
    slo: SLO
    good: float
    total: float
    value: float | None
    compliant: bool | None
    budget: budget.Budget
    burn: float | None
    risk: str
    exhausted_at: datetime | None
    minutes_without_data: float
    burns: dict[timedelta, float | None]


@functools.lru_cache(maxsize=256)
def _minutes(delta: timedelta) -> Fraction:
    # cached: the SLOs of one kind share their window's length and elapsed part
    return Fraction(delta // timedelta(microseconds=1), 60_000_000)


def evaluate(slo: SLO, readings: sli.Readings | metric_sli.Readings, now: datetime) -> Evaluation:
    start, end = slo.window_bounds(now)
    window_minutes = _minutes(end - start)
    elapsed_minutes = _minutes(min(end, now) - start)
    w = readings.window
    timeslices = slo.budgeting_method == BudgetingMethod.TIMESLICES
    objective = slo.objective
    if timeslices:
        good, total = _timeslices(slo, w)
    else:
        good, total = w.good(slo.sli_type, slo.latency_threshold_ms), w.total
    spent = budget.budget_spent(
        objective=objective, window_minutes=window_minutes, good=good, total=total,
        elapsed_minutes=elapsed_minutes, timeslices=timeslices,
    )  # fmt: skip
    burns = {
        lb: budget.burn_rate(
            s.total - s.good(slo.sli_type, slo.latency_threshold_ms), s.total, objective
        )
        for lb, s in readings.lookbacks.items()
    }
    burn = burns.get(timedelta(hours=1))
    return Evaluation(
        slo=slo,
        good=budget.rounded(good),
        total=budget.rounded(total),
        value=budget.sli_percent(good, total, slo.sli_type),
        compliant=budget.meets(good, total, objective),
        budget=spent,
        burn=burn,
        risk=budget.violation_risk(spent.remaining_percent, burn),
        exhausted_at=budget.exhaustion_forecast(now, spent.remaining_minutes, burn, objective),
        minutes_without_data=_minutes_without_data(elapsed_minutes, w.minutes),
        burns=burns,
    )


def _minutes_without_data(elapsed: Fraction, with_data) -> float:
    """The elapsed minutes of the window without any check (none before it starts)."""
    elapsed_n, elapsed_d = elapsed.as_integer_ratio()
    data_n, data_d = with_data.as_integer_ratio()
    gap = max(elapsed_n * data_d - data_n * elapsed_d, 0)
    return budget.rounded(budget.Ratio((gap, elapsed_d * data_d)))


def _timeslices(slo: SLO, window: sli.Sums) -> tuple[float, float]:
    """Good minutes / minutes with data. A minute is good when none of its checks failed; for
    latency, when all of them were at or under the threshold (estimated from the histogram)."""
    if slo.sli_type == "latency":
        share = (
            window.good(slo.sli_type, slo.latency_threshold_ms) / window.total
            if window.total
            else 0
        )
        return window.minutes * share, window.minutes
    return window.good_minutes, window.minutes


def sli_targets(slos: list[SLO], now: datetime) -> list[sli.Target]:
    """What the SLI reads need of each check SLO: its service and where its window starts."""
    return [
        sli.Target(
            s.id,
            s.service_id,
            s.window_bounds(now)[0],
            exact_start=s.window not in budget.ROLLING,
            latency=s.sli_type == "latency",
        )
        for s in slos
    ]


EVALUATED = (
    "id", "name", "service_id", "sli_type", "target", "window", "time_zone", "budgeting_method",
    "latency_threshold_ms", "good_metric", "total_metric", "histogram_metric",
    "histogram_threshold", "enabled",
)  # fmt: skip


def metric_targets(slos: list[SLO], now: datetime) -> list[metric_sli.Target]:
    """What the metric SLI read needs of each metric SLO: its selectors and window start."""

    def selector(value) -> metric_sli.Selector | None:
        return metric_sli.parse_selector(value)[0] if value is not None else None

    return [
        metric_sli.Target(
            s.id, s.sli_type, s.window_bounds(now)[0], good=selector(s.good_metric),
            total=selector(s.total_metric), histogram=selector(s.histogram_metric),
            threshold=s.histogram_threshold,
        )
        for s in slos
    ]  # fmt: skip


def slos_read(
    slos: list[SLO], now: datetime, *, keep: bool = False
) -> dict[str, sli.Readings | metric_sli.Readings]:
    """Every SLO's readings: check SLIs from the check rollups (`keep`: see sli.read), metric
    SLIs from the metric series, each in a few set-based statements."""
    checks = [s for s in slos if not s.is_metric_based]
    metrics = [s for s in slos if s.is_metric_based]
    readings: dict = sli.read(sli_targets(checks, now), now, keep=keep)
    readings.update(metric_sli.read(metric_targets(metrics, now), now))
    return readings


def slos_evaluate(*, now: datetime | None = None) -> int:
    """Evaluate every enabled SLO: two queries read all SLIs, one insert writes the history,
    one update the cache; then alerts fire or clear. Returns the number evaluated, or -1 when
    another worker holds the evaluation lock (running twice at once would only repeat work)."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    with _without_cycle_collection():
        return _evaluate_all(now)


@contextlib.contextmanager
def _without_cycle_collection():
    """An evaluation allocates a few hundred short-lived objects per SLO, freed as they go by
    reference counting; meanwhile the cyclic collector would walk the worker's whole heap over
    and over (a full pass over a Django worker's ~200,000 objects took 0.1 s, in one
    evaluation of 1,000 SLOs out of two or three). It runs again afterwards."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _evaluate_all(now: datetime) -> int:
    sli.ensure_kept_marks(now)  # (committed first: see there)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [EVALUATION_LOCK])
            if not cursor.fetchone()[0]:
                return -1
        # What evaluation, the history and alerts read (anything else, and the service of an
        # alert that fires, is loaded when used: rarely).
        slos = list(SLO.objects.filter(enabled=True).only(*EVALUATED))
        readings = slos_read(slos, now, keep=True)
        evaluations = [evaluate(s, readings[s.id], now) for s in slos]
        _write_history(evaluations, now)
        _write_cache(evaluations, now)
    _update_alerts(evaluations, now)
    return len(evaluations)


def _update_alerts(evaluations: list[Evaluation], now: datetime) -> None:
    firing: dict[str, dict[str, SLOAlert]] = {}
    for alert in SLOAlert.objects.filter(state=AlertState.FIRING):
        firing.setdefault(alert.slo_id, {})[alert.rule] = alert
    for evaluation in evaluations:
        alerts = firing.pop(evaluation.slo.id, {})
        # Most SLOs have no alert firing and burn under every threshold: nothing to do.
        if alerts or budget.may_fire(evaluation.burns):
            alerts_update(evaluation=evaluation, now=now, firing=alerts)
    # What is left belongs to SLOs that are not evaluated (disabled): nothing would clear it.
    for alerts in firing.values():
        for alert in alerts.values():
            if not alert.slo.enabled:
                alert_clear(alert=alert, now=now, reason="the SLO is disabled")


HISTORY_COLUMNS = (
    ("slo_id", "varchar"), ("time", "timestamptz"), ("sli_type", "varchar"),
    ('"window"', "varchar"), ("current_value", "float8"), ("target", "float8"),
    ("compliant", "bool"), ("good", "float8"), ("total", "float8"),
    ("budget_total_minutes", "float8"), ("budget_remaining_minutes", "float8"),
    ("budget_used_minutes", "float8"), ("budget_used_percent", "float8"),
    ("burn_rate", "float8"), ("violation_risk", "varchar"), ("minutes_without_data", "float8"),
)  # fmt: skip
HISTORY_COPY = (
    f"COPY slos_slostatus ({', '.join(name for name, _ in HISTORY_COLUMNS)}) "
    "FROM STDIN (FORMAT BINARY)"
)
# When the minute already has rows (evaluated twice, or by two workers one after the other).
HISTORY = f"""
    INSERT INTO slos_slostatus ({", ".join(name for name, _ in HISTORY_COLUMNS)})
    SELECT * FROM unnest({", ".join(f"@{kind}@" for _, kind in HISTORY_COLUMNS)})
    ON CONFLICT (slo_id, time) DO NOTHING
"""


def _f(value) -> float | None:
    """Floats, as the float8 columns take them."""
    return None if value is None else float(value)


def _history_rows(evaluations: list[Evaluation], now: datetime) -> list[tuple]:
    return [
        (
            e.slo.id, now, e.slo.sli_type, e.slo.window, _f(e.value), float(e.slo.target),
            e.compliant, float(e.good), float(e.total), e.budget.total_minutes,
            e.budget.remaining_minutes, e.budget.used_minutes, e.budget.used_percent,
            _f(e.burn), e.risk, float(e.minutes_without_data),
        )
        for e in evaluations
    ]  # fmt: skip


def _write_history(evaluations: list[Evaluation], now: datetime) -> None:
    """One row per SLO for the minute, by binary COPY (plain inserts, nothing to parse); a
    minute that already has rows takes the INSERT that skips them."""
    rows = _history_rows(evaluations, now)
    if not rows:
        return
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _copy_history(cursor, rows)
    except (IntegrityError, UniqueViolation):
        columns = [list(column) for column in zip(*rows, strict=True)]
        with connection.cursor() as cursor:
            sli.execute(cursor, HISTORY, columns)
    except Exception as exc:
        if "no partition of relation" not in str(exc):
            raise
        partitions.ensure(SLO_HISTORY, now, now + timedelta(seconds=1))
        with transaction.atomic(), connection.cursor() as cursor:
            _copy_history(cursor, rows)


def _copy_history(cursor, rows: list[tuple]) -> None:
    with cursor.cursor.copy(HISTORY_COPY) as copy:
        copy.set_types([kind for _, kind in HISTORY_COLUMNS])
        for row in rows:
            copy.write_row(row)


CACHE = """
    UPDATE slos_slo s SET current_value = u.value, compliant = u.compliant,
        budget_total_minutes = u.total, budget_remaining_minutes = u.remaining,
        budget_used_minutes = u.used, budget_remaining_percent = u.remaining_percent,
        burn_rate = u.burn, violation_risk = u.risk, budget_exhausted_at = u.exhausted_at,
        minutes_without_data = u.no_data, calculated_at = %s
    FROM unnest(@varchar@, @float8@, @bool@, @float8@, @float8@,
                @float8@, @float8@, @float8@, @varchar@, @timestamptz@,
                @float8@)
        AS u(id, value, compliant, total, remaining, used, remaining_percent, burn, risk,
             exhausted_at, no_data)
    WHERE s.id = u.id
"""


def _write_cache(evaluations: list[Evaluation], now: datetime) -> None:
    rows = [
        (
            e.slo.id, _f(e.value), e.compliant, _f(e.budget.total_minutes),
            _f(e.budget.remaining_minutes), _f(e.budget.used_minutes),
            _f(e.budget.remaining_percent), _f(e.burn), e.risk, e.exhausted_at,
            _f(e.minutes_without_data),
        )
        for e in evaluations
    ]  # fmt: skip
    if rows:
        with connection.cursor() as cursor:
            sli.execute(cursor, CACHE, [now, *[list(c) for c in zip(*rows, strict=True)]])


# --- alerts -----------------------------------------------------------------------------------


def alerts_update(
    *, evaluation: Evaluation, now: datetime, firing: dict[str, SLOAlert] | None = None
) -> None:
    """Fire or clear the SLO's rules. `firing` (rule → alert) saves a query per SLO when the
    caller loaded every firing alert at once."""
    slo = evaluation.slo
    length = budget.window_length(slo.window, now, ZoneInfo(slo.time_zone))
    if firing is None:
        firing = {a.rule: a for a in SLOAlert.objects.filter(slo=slo, state=AlertState.FIRING)}
    rules = budget.rule_limits(length)  # (rule, fires at, clears under): rule_fires, rule_clears
    if firing:
        applicable = {rule.name for rule, _, _ in rules}
        for name, alert in firing.items():
            # The window changed (or the rule is gone): the rule is no longer evaluated for
            # this SLO, so its alert would fire for ever.
            if name not in applicable:
                reason = "the rule no longer applies to the window"
                alert_clear(alert=alert, now=now, reason=reason)
    burns = evaluation.burns
    for rule, fires_at, clears_under in rules:
        long_burn, short_burn = burns.get(rule.long), burns.get(rule.short)
        alert = firing.get(rule.name)
        if alert is None:
            if (long_burn or 0) >= fires_at and (short_burn or 0) >= fires_at:
                alert_fire(
                    slo=slo, rule=rule, window=length, long_burn=long_burn,
                    short_burn=short_burn, now=now,
                )  # fmt: skip
        elif (long_burn or 0) < clears_under and (short_burn or 0) < clears_under:
            alert_clear(alert=alert, now=now)


@transaction.atomic
def alert_fire(
    *, slo: SLO, rule: budget.AlertRule, window: timedelta, long_burn, short_burn, now
) -> SLOAlert | None:
    threshold = rule.threshold(window)
    try:
        with transaction.atomic():
            alert = SLOAlert.objects.create(
                slo=slo, rule=rule.name, severity=rule.severity, threshold=threshold,
                long_burn=long_burn or 0, short_burn=short_burn or 0, fired_at=now,
            )  # fmt: skip
    except IntegrityError:
        return None  # another worker fired it first
    message = (
        f"SLO {slo.name}: burn rate {long_burn:.1f} over {_span(rule.long)} and "
        f"{short_burn:.1f} over {_span(rule.short)} (threshold {threshold:g})"
    )
    if rule.severity == AlertSeverity.PAGE:
        alert.incident = _page(slo, message, alert)
        alert.save(update_fields=["incident"])
    else:
        _ticket(slo, message, alert)
    return alert


def _page(slo: SLO, message: str, alert: SLOAlert):
    if slo.service is None:
        # A metric SLO about no service has no incident to open: its page is a notice to the
        # default channels, at high severity.
        _notice(slo, message, alert, severity=Severity.HIGH, title=f"SLO page: {slo.name}")
        return None
    evidence = {
        "slo": slo.id,
        "rule": alert.rule,
        "long_burn": alert.long_burn,
        "short_burn": alert.short_burn,
    }
    try:
        return incident_actions.incident_open(
            service=slo.service,
            source=IncidentSource.SLO,
            impact_started_at=alert.fired_at,
            title=f"SLO {slo.name} is burning its error budget",
            summary=message,
            dedup_key=f"slo:{slo.id}",
            evidence=evidence,
        )
    except incident_actions.AlreadyActive as active:
        # One active incident per service: the page joins the incident already open.
        incident_actions.event_record(
            incident=active.existing, kind=EventKind.COMMENT, message=message, data=evidence
        )
        return active.existing


def _ticket(slo: SLO, message: str, alert: SLOAlert) -> None:
    # A ticket is worth a look within the day, not a page: channels whose minimum severity is
    # high or critical (pagers) do not hear of it.
    logger.warning("SLO ticket alert: %s", message)
    _notice(slo, message, alert, severity=Severity.MEDIUM, title=f"SLO ticket: {slo.name}")


def _notice(slo: SLO, message: str, alert: SLOAlert, *, severity: str, title: str) -> None:
    notice_plan(
        kind=NoticeKind.SLO_TICKET,
        service=slo.service,
        severity=severity,
        title=title,
        message=message,
        time=alert.fired_at,
        facts={
            "slo": {"id": slo.id, "name": slo.name, "target": str(slo.target)},
            "alert": {
                "id": alert.pk,
                "rule": alert.rule,
                "threshold": alert.threshold,
                "long_burn": alert.long_burn,
                "short_burn": alert.short_burn,
            },
        },
    )


@transaction.atomic
def alert_clear(*, alert: SLOAlert, now: datetime, reason: str = "") -> None:
    """Resolve a firing alert; a page says so on its incident's timeline. `reason`: why, when
    it is not the burn rates falling (the SLO disabled, the rule no longer applying)."""
    updated = SLOAlert.objects.filter(pk=alert.pk, state=AlertState.FIRING).update(
        state=AlertState.RESOLVED, resolved_at=now
    )
    if updated:
        alert.state, alert.resolved_at = AlertState.RESOLVED, now
    if updated and alert.incident_id and alert.severity == AlertSeverity.PAGE:
        incident_actions.event_record(
            incident=alert.incident,
            kind=EventKind.COMMENT,
            message=f"SLO burn-rate alert {alert.rule} cleared" + (f": {reason}" if reason else ""),
        )


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes % 1440 == 0:
        return f"{minutes // 1440}d"
    if minutes % 60 == 0:
        return f"{minutes // 60}h"
    return f"{minutes}m"
