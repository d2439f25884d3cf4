"""Enumerations of the slos app."""

from django.db import models


class SliType(models.TextChoices):
    """The first three read a service's checks; the last two count events in metric series."""

    AVAILABILITY = "availability", "Availability"
    LATENCY = "latency", "Latency"
    ERROR_RATE = "error_rate", "Error rate"
    RATIO = "ratio", "Ratio of two counters (good events / total events)"
    HISTOGRAM = "histogram", "Latency histogram under a threshold"


CHECK_SLI_TYPES = (SliType.AVAILABILITY, SliType.LATENCY, SliType.ERROR_RATE)
METRIC_SLI_TYPES = (SliType.RATIO, SliType.HISTOGRAM)


class SloWindow(models.TextChoices):
    """Rolling windows (the seed's), and calendar-aligned ones as OpenSLO defines them."""

    HOUR = "1h", "Rolling 1 hour"
    DAY = "24h", "Rolling 24 hours"
    WEEK = "7d", "Rolling 7 days"
    MONTH = "30d", "Rolling 30 days"
    QUARTER = "90d", "Rolling 90 days"
    CALENDAR_MONTH = "month", "This calendar month"
    CALENDAR_QUARTER = "quarter", "This calendar quarter"


class BudgetingMethod(models.TextChoices):
    OCCURRENCES = "occurrences", "Occurrences (good checks / all checks)"
    TIMESLICES = "timeslices", "Timeslices (good minutes / all minutes)"


class ViolationRisk(models.TextChoices):
    NONE = "none", "None"
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"


RISK_RANK = {r: i for i, r in enumerate(ViolationRisk.values)}


class AlertSeverity(models.TextChoices):
    PAGE = "page", "Page"
    TICKET = "ticket", "Ticket"


class AlertState(models.TextChoices):
    FIRING = "firing", "Firing"
    RESOLVED = "resolved", "Resolved"
