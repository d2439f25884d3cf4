"""API shapes of the collectors app. Serializers check shapes; collectors.validation and the
actions check meaning."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import serializers

from collectors.choices import TIMEFRAME_SECONDS
from collectors.models import Collector, CollectorRun
from collectors.validation import symbol_problem
from observability.models import Application


class CollectorSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(
        slug_field="slug", queryset=Application.objects.all()
    )
    token = serializers.CharField(
        write_only=True, required=False, allow_blank=True, max_length=4096,
        help_text="Bearer token, stored encrypted and never shown back; '' removes it.",
    )  # fmt: skip
    has_token = serializers.BooleanField(read_only=True)

    class Meta:
        model = Collector
        fields = [
            "id", "name", "kind", "application", "enabled", "interval_seconds", "url",
            "timeout_seconds", "allow_private", "max_body_bytes", "metric_allow", "metric_deny",
            "extra_labels", "bearer_token_env", "token", "has_token", "json_paths", "price_path",
            "symbol", "timeframe", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]


class CollectorRunSerializer(serializers.ModelSerializer):
    collector_name = serializers.CharField(source="collector.name", read_only=True)
    kind = serializers.CharField(source="collector.kind", read_only=True)
    symbol = serializers.CharField(source="collector.symbol", read_only=True)
    timeframe = serializers.CharField(source="collector.timeframe", read_only=True)
    uptime = serializers.SerializerMethodField(help_text="Seconds since the start (to the stop).")

    class Meta:
        model = CollectorRun
        fields = [
            "id", "collector", "collector_name", "kind", "symbol", "timeframe", "status",
            "started_at", "stopped_at", "uptime", "host", "pid", "last_heartbeat_at", "samples",
            "executions", "consecutive_failures", "last_error", "last_error_at", "last_slot",
            "last_lag_ms",
        ]  # fmt: skip
        read_only_fields = fields

    def get_uptime(self, run: CollectorRun) -> int:
        return run.uptime_seconds(self.context.get("now") or timezone.now())


class StatusSerializer(serializers.Serializer):
    collectors = CollectorRunSerializer(many=True)


class StartSerializer(serializers.Serializer):
    """Either `collector` (an id) or `symbol` and `timeframe` (the seed's body, which creates
    or reuses an ohlcv collector)."""

    collector = serializers.PrimaryKeyRelatedField(queryset=Collector.objects.all(), required=False)
    symbol = serializers.CharField(required=False, max_length=100)
    timeframe = serializers.CharField(required=False, max_length=100)

    def validate_symbol(self, value: str) -> str:
        if problem := symbol_problem(value):
            raise serializers.ValidationError(problem)
        return value

    def validate_timeframe(self, value: str) -> str:
        if value not in TIMEFRAME_SECONDS:
            raise serializers.ValidationError(f"must be one of {', '.join(TIMEFRAME_SECONDS)}")
        return value

    def validate(self, data: dict) -> dict:
        by_symbol = "symbol" in data or "timeframe" in data
        if "collector" in data and by_symbol:
            raise serializers.ValidationError("Send either collector or symbol and timeframe.")
        if "collector" not in data:
            missing = [f for f in ("symbol", "timeframe") if f not in data]
            if missing:
                raise serializers.ValidationError(
                    {f: ["This field is required (or send collector)."] for f in missing}
                )
        return data


class StartedSerializer(serializers.Serializer):
    message = serializers.CharField()
    id = serializers.IntegerField(help_text="The run's id.")
    pid = serializers.IntegerField(allow_null=True, help_text="Set once a worker executed it.")
    collector = serializers.IntegerField()
    run = CollectorRunSerializer()


class StopSerializer(serializers.Serializer):
    """Either `id` (a run) or `pid` (the seed's body: every running run last executed by that
    worker process)."""

    id = serializers.IntegerField(required=False, min_value=1)
    pid = serializers.IntegerField(required=False, min_value=1)

    def validate(self, data: dict) -> dict:
        if ("id" in data) == ("pid" in data):
            raise serializers.ValidationError("Send either id (a run) or pid.")
        return data


class StoppedSerializer(serializers.Serializer):
    message = serializers.CharField()
    id = serializers.IntegerField(required=False)
    pid = serializers.IntegerField(required=False, allow_null=True)
    stopped = serializers.ListField(child=serializers.IntegerField(), help_text="Run ids.")


class NotRunningSerializer(serializers.Serializer):
    """The seed's 404: nothing running matched the stop."""

    message = serializers.CharField()
    code = serializers.CharField()
    id = serializers.IntegerField(required=False)
    pid = serializers.IntegerField(required=False)
