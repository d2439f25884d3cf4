"""Rules an SLO must meet before it is saved; each error names its field."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.core.exceptions import ValidationError

from services.choices import CheckKind
from slos.choices import METRIC_SLI_TYPES, BudgetingMethod, SliType, SloWindow
from slos.metric_sli import validate_metric_sli

# Paths under /api/slos/ that are not SLOs: an SLO with such an id could not be reached.
RESERVED_IDS = frozenset({"summary", "report"})


def validate_slo(slo) -> None:
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    # The id is fixed once created (read-only in the admin and the API): checked on creation.
    if slo._state.adding and slo.pk in RESERVED_IDS:
        add("id", f"{slo.pk!r} is reserved (it is a path under /api/slos/); choose another id.")
    if slo.sli_type not in SliType.values:
        add(
            "sli_type",
            f"Unknown SLI type {slo.sli_type!r}; use one of {', '.join(SliType.values)}.",
        )
    if slo.window not in SloWindow.values:
        add("window", f"Unknown window {slo.window!r}; use one of {', '.join(SloWindow.values)}.")
    if slo.budgeting_method not in BudgetingMethod.values:
        add("budgeting_method", f"Unknown budgeting method {slo.budgeting_method!r}.")
    _target(slo.target, add)
    if slo.sli_type in METRIC_SLI_TYPES:
        validate_metric_sli(slo, add)
    else:
        _no_metric_fields(slo, add)
        if not slo.service_id:
            add("service", "A check-based SLI reads a service's checks: name the service.")
    if slo.sli_type == SliType.LATENCY:
        if not slo.latency_threshold_ms:
            add("latency_threshold_ms", "A latency SLI needs a threshold in milliseconds.")
        service = getattr(slo, "service", None) if slo.service_id else None
        if service is not None and service.kind == CheckKind.PUSH:
            add("sli_type", "A push service has no response time: a latency SLO cannot use it.")
    if not _known_zone(slo.time_zone):
        add("time_zone", f"Unknown time zone {slo.time_zone!r}; use an IANA name (Europe/Madrid).")
    if errors:
        raise ValidationError(errors)


def _no_metric_fields(slo, add) -> None:
    for name in ("good_metric", "total_metric", "histogram_metric", "histogram_threshold"):
        if getattr(slo, name) is not None:
            add(name, "Only for metric SLIs (ratio, histogram); this SLI reads checks.")


def _known_zone(name) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    # A directory of the zone database ("America", "Etc") raises IsADirectoryError, a file that
    # is not a zone ValueError, a name with a NUL byte ValueError.
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _target(value, add) -> None:
    try:
        target = Decimal(str(value))
    except (InvalidOperation, TypeError):
        add("target", f"{value!r} is not a number.")
        return
    if not Decimal(0) < target < Decimal(100):
        add("target", f"The target must be strictly between 0 and 100 (got {target}).")
