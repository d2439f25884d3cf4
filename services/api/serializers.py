"""API shapes of the services app. Serializers validate input; actions.py writes."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from rest_framework import serializers

from noc import formatting
from noc.api.display import RoundedField
from noc.api.serializers import ModelSerializer
from services.choices import CheckKind
from services.models import MaintenanceWindow, Service
from services.validation import cron_problem

STATE_FIELDS = [
    "status", "last_checked_at", "last_response_time_ms", "last_status_code", "last_error",
    "consecutive_failures", "consecutive_successes", "next_check_at", "last_ping_at",
    "last_start_at", "created_at", "updated_at",
]  # fmt: skip
CONFIG_FIELDS = [
    "id", "name", "description", "tags", "critical", "enabled",
    "kind", "url", "method", "headers", "body", "follow_redirects", "verify_tls",
    "host", "port", "dns_name", "dns_record_type", "dns_expected", "dns_server",
    "timeout_seconds", "retries", "allow_private", "interval_seconds", "cron",
    "expected_status", "max_response_time_ms", "body_contains", "body_not_contains",
    "json_path", "json_expected", "cert_min_days", "grace_seconds",
    "failure_threshold", "success_threshold", "incident_severity",
]  # fmt: skip


class ServiceSerializer(serializers.ModelSerializer):
    ping_token = serializers.SerializerMethodField()
    ping_url = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [*CONFIG_FIELDS, *STATE_FIELDS, "ping_token", "ping_url"]
        read_only_fields = STATE_FIELDS

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            # The id is the slug in every URL and in other apps' references: fixed once created.
            fields["id"].read_only = True
        return fields

    def get_ping_token(self, service: Service) -> str | None:
        return str(service.ping_token) if service.kind == CheckKind.PUSH else None

    def get_ping_url(self, service: Service) -> str | None:
        if service.kind != CheckKind.PUSH:
            return None
        path = reverse("ping", kwargs={"token": service.ping_token})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # A schedule is an interval or a cron expression: giving one clears the other, so a
        # client sending only `cron` is not refused for the default 60 s interval.
        if attrs.get("cron") and "interval_seconds" not in attrs:
            attrs["interval_seconds"] = None
        if attrs.get("interval_seconds") and "cron" not in attrs:
            attrs["cron"] = ""
        return attrs


class ServiceUpdateSerializer(ServiceSerializer):
    """What PUT and PATCH take: the same fields, the id fixed once created (schema only)."""

    class Meta(ServiceSerializer.Meta):
        read_only_fields = [*STATE_FIELDS, "id"]


class CheckResultSerializer(serializers.Serializer):
    """CheckResult has a composite primary key, so no ModelSerializer: plain read-only fields."""

    time = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    status = serializers.CharField()
    response_time_ms = serializers.FloatField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    details = serializers.JSONField()
    in_maintenance = serializers.BooleanField()


class UptimeDisplaySerializer(serializers.Serializer):
    uptime_percent = RoundedField(
        formatting.optional_percent, help_text="Rounded down: '99.89 %', '99.995 %'."
    )
    response_time_avg_ms = RoundedField(formatting.ms_label, help_text="'123 ms', '1.23 s'")
    response_time_p95_ms = RoundedField(formatting.ms_label)


class UptimeSerializer(serializers.Serializer):
    window = serializers.CharField()
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()
    checks = serializers.IntegerField()
    up = serializers.IntegerField()
    degraded = serializers.IntegerField()
    failures = serializers.IntegerField()
    maintenance = serializers.IntegerField()
    uptime_percent = serializers.FloatField(allow_null=True)
    response_time_avg_ms = serializers.FloatField(allow_null=True)
    response_time_min_ms = serializers.FloatField(allow_null=True)
    response_time_max_ms = serializers.FloatField(allow_null=True)
    response_time_p95_ms = serializers.FloatField(
        allow_null=True,
        help_text="Estimated from the cumulative latency buckets by linear interpolation.",
    )
    display = UptimeDisplaySerializer(
        source="*", read_only=True, help_text="The numbers above rounded for people."
    )


class CheckNowResultSerializer(serializers.Serializer):
    time = serializers.DateTimeField()
    status = serializers.CharField()
    response_time_ms = serializers.FloatField(allow_null=True)
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    details = serializers.JSONField()


def maintenance_window_errors(
    *,
    starts_at,
    ends_at,
    cron: str,
    duration_minutes: int | None,
) -> dict[str, list[str]]:
    """A one-off window needs start < end; a recurring one a cron that fires (before and after
    now) and a duration. Shared by the API serializer and the admin form."""
    errors: dict[str, list[str]] = {}
    if not cron:
        if starts_at is None:
            errors["starts_at"] = ["A one-off window needs a start (or give a cron)."]
        if ends_at is None:
            errors["ends_at"] = ["A one-off window needs an end (or give a cron)."]
    elif problem := cron_problem(cron, window=True):
        errors["cron"] = [problem]
    if cron and (duration_minutes is None or duration_minutes < 1):
        errors["duration_minutes"] = ["A recurring window needs a duration of at least 1 minute."]
    if starts_at and ends_at and starts_at >= ends_at:
        errors.setdefault("ends_at", []).append("The end must be after the start.")
    return errors


class ServiceIdsField(serializers.ListField):
    """A list of service ids, resolved in one query (PrimaryKeyRelatedField runs one each)."""

    child = serializers.SlugField(max_length=64)

    def to_internal_value(self, data) -> list[Service]:
        ids = list(dict.fromkeys(super().to_internal_value(data)))
        found = Service.objects.in_bulk(ids)
        missing = [service_id for service_id in ids if service_id not in found]
        if missing:
            raise serializers.ValidationError(f"Unknown service ids: {', '.join(missing)}.")
        return [found[service_id] for service_id in ids]

    def to_representation(self, value) -> list[str]:
        return [service.pk for service in value.all()]


class MaintenanceWindowSerializer(ModelSerializer):
    services = ServiceIdsField(help_text="Service ids.")

    class Meta:
        model = MaintenanceWindow
        fields = [
            "id", "name", "description", "services", "starts_at", "ends_at", "cron",
            "duration_minutes", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        def value(name: str, default=None):
            if name in attrs:
                return attrs[name]
            return getattr(self.instance, name, default) if self.instance else default

        errors = maintenance_window_errors(
            starts_at=value("starts_at"),
            ends_at=value("ends_at"),
            cron=value("cron", "") or "",
            duration_minutes=value("duration_minutes"),
        )
        if errors:
            raise serializers.ValidationError(errors)
        return attrs
