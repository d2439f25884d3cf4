"""Reads of an SLO's page: its cached status, the budget burn-down over the window, the burn
rate of every alert window against its threshold (read now, not cached), its alerts and its
evaluation history.

The burn rates come from the same SLI read and arithmetic as the evaluation (slos.sli or
slos.metric_sli, and slos.actions.evaluate), without writing anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from slos import budget
from slos.actions import evaluate, slos_read
from slos.models import SLO, SLOAlert, SLOStatus
from slos.queries import BurnDown, slo_alerts, slo_burn_down, slo_status_history

HISTORY_ROWS = 30
ALERT_ROWS = 20


@dataclass(frozen=True)
class RuleBurn:
    """One alert rule: its two windows' burn rates now and the threshold both must reach."""

    rule: budget.AlertRule
    threshold: float
    long_burn: float | None
    short_burn: float | None

    @property
    def firing_now(self) -> bool:
        return (self.long_burn or 0) >= self.threshold and (self.short_burn or 0) >= self.threshold


@dataclass(frozen=True)
class SloPage:
    now: datetime
    slo: SLO
    burn_down: BurnDown
    rules: list[RuleBurn]
    skipped_rules: list[budget.AlertRule]  # longer than the window: never evaluated
    alerts: list[SLOAlert]
    history: list[SLOStatus]


def slo_page(slo: SLO, *, now: datetime | None = None) -> SloPage:
    now = now or timezone.now()
    rules, skipped = rule_burns(slo, now)
    return SloPage(
        now=now,
        slo=slo,
        burn_down=slo_burn_down(slo, now=now),
        rules=rules,
        skipped_rules=skipped,
        alerts=list(slo_alerts(slo.pk)[:ALERT_ROWS]),
        history=slo_status_history(slo.pk, limit=HISTORY_ROWS),
    )


def rule_burns(slo: SLO, now: datetime) -> tuple[list[RuleBurn], list[budget.AlertRule]]:
    """Burn rates over every lookback the rules use, in the SLO's evaluation terms."""
    minute = now.replace(second=0, microsecond=0)
    readings = slos_read([slo], minute)[slo.pk]
    burns = evaluate(slo, readings, minute).burns
    start, end = slo.window_bounds(minute)
    window: timedelta = end - start
    applicable = budget.rules_for(window)
    return (
        [
            RuleBurn(rule, rule.threshold(window), burns.get(rule.long), burns.get(rule.short))
            for rule in applicable
        ],
        [rule for rule in budget.RULES if rule not in applicable],
    )
