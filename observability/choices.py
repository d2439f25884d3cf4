"""Enumerations of the observability app."""

from django.db import models


class Environment(models.TextChoices):
    PRODUCTION = "production", "Production"
    STAGING = "staging", "Staging"
    DEVELOPMENT = "development", "Development"
    TEST = "test", "Test"


class MetricKind(models.TextChoices):
    """What a series' values mean. Counters and histogram parts are cumulative (a rate is
    their increase over time); `delta` series hold increments (OTLP delta temporality)."""

    GAUGE = "gauge", "Gauge"
    COUNTER = "counter", "Counter (cumulative)"
    HISTOGRAM = "histogram", "Histogram part (cumulative _count, _sum, _bucket)"
    SUMMARY = "summary", "Summary part (_count, _sum, quantiles)"
    DELTA = "delta", "Delta (increments)"


class Rejection(models.TextChoices):
    """Why a point was not stored: the keys of the ingestion answer's `rejections`."""

    INVALID_NAME = "invalid_name", "Name outside the Prometheus syntax or too long"
    INVALID_LABELS = "invalid_labels", "Label name syntax, value type or length"
    TOO_MANY_LABELS = "too_many_labels", "More labels than the limit"
    NON_FINITE = "non_finite", "NaN or infinite value"
    TOO_OLD = "too_old", "Older than the retention"
    TOO_NEW = "too_new", "More than 10 minutes in the future"
    CARDINALITY = "cardinality", "The application has reached its series limit"


class LogLevel(models.TextChoices):
    """Levels of a log line, lowest first (OTLP severity numbers map onto them)."""

    TRACE = "trace", "Trace"
    DEBUG = "debug", "Debug"
    INFO = "info", "Info"
    WARN = "warn", "Warning"
    ERROR = "error", "Error"
    FATAL = "fatal", "Fatal"


class Aggregation(models.TextChoices):
    """How an alert rule reduces a series' points in its window to one value."""

    AVG = "avg", "Average"
    SUM = "sum", "Sum"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    COUNT = "count", "Number of points"
    LAST = "last", "Last value"
    P95 = "p95", "95th percentile"


class QueryAggregation(models.TextChoices):
    """How GET /api/metrics/query reduces each step of a series."""

    AVG = "avg", "Average"
    MIN = "min", "Minimum"
    MAX = "max", "Maximum"
    SUM = "sum", "Sum"
    COUNT = "count", "Number of points"
    LAST = "last", "Last value"
    RATE = "rate", "Increase per second (counters; delta series: sum per second)"
    P95 = "p95", "95th percentile"


class Condition(models.TextChoices):
    GT = "gt", ">"
    GTE = "gte", ">="
    LT = "lt", "<"
    LTE = "lte", "<="
    ABSENT = "absent", "absent (no data in the window)"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending (breaching, not yet for long enough)"
    ACTIVE = "active", "Active (firing)"
    RESOLVED = "resolved", "Resolved"


OPEN_ALERT_STATUSES = (AlertStatus.PENDING, AlertStatus.ACTIVE)


class SpanKind(models.TextChoices):
    """OTLP's span kinds (its enum's numbers 0-5, in this order)."""

    UNSPECIFIED = "unspecified", "Unspecified"
    INTERNAL = "internal", "Internal"
    SERVER = "server", "Server"
    CLIENT = "client", "Client"
    PRODUCER = "producer", "Producer"
    CONSUMER = "consumer", "Consumer"


class SpanStatus(models.TextChoices):
    """OTLP's status codes (0-2, in this order)."""

    UNSET = "unset", "Unset"
    OK = "ok", "OK"
    ERROR = "error", "Error"
