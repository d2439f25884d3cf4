"""Enumerations of the collectors app."""

from django.db import models


class CollectorKind(models.TextChoices):
    PROMETHEUS = "prometheus", "Prometheus / OpenMetrics scrape"
    HTTP_JSON = "http_json", "Numbers at JSON paths of an HTTP JSON document"
    OHLCV = "ohlcv", "Open/high/low/close/count of a polled price"


class RunStatus(models.TextChoices):
    RUNNING = "running", "Running"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"


class Timeframe(models.TextChoices):
    """The seed's timeframes: the width of one OHLC bucket."""

    M1 = "1m", "1 minute"
    M5 = "5m", "5 minutes"
    M15 = "15m", "15 minutes"
    H1 = "1h", "1 hour"
    H4 = "4h", "4 hours"
    D1 = "1d", "1 day"


TIMEFRAME_SECONDS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "4h": 14_400, "1d": 86_400}
