"""Alert rules (`/api/alert-rules/`: admins write, everyone reads) and alerts (`/api/alerts/`:
active first, by severity, newest first; operators acknowledge and silence)."""

from __future__ import annotations

import copy

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from incidents.models import NotificationChannel
from observability import actions, queries
from observability.api.views import ObservabilityReadMixin
from observability.filters import AlertFilter, AlertRuleFilter
from observability.models import Alert, AlertRule, Application
from services.models import Service

MAX_SILENCE_MINUTES = 7 * 24 * 60


class AlertRuleSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(
        slug_field="slug", queryset=Application.objects.all(), allow_null=True, required=False
    )
    service = serializers.PrimaryKeyRelatedField(
        queryset=Service.objects.all(), allow_null=True, required=False
    )
    channels = serializers.PrimaryKeyRelatedField(
        many=True, queryset=NotificationChannel.objects.all(), required=False
    )

    class Meta:
        model = AlertRule
        fields = [
            "id", "name", "description", "enabled", "application", "metric", "match_labels",
            "aggregation", "window_seconds", "condition", "threshold", "for_seconds",
            "severity", "labels", "channels", "service", "opens_incident", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, data: dict) -> dict:
        """The model's own rules (windows, thresholds, labels), as the admin applies them."""
        fields = {k: v for k, v in data.items() if k != "channels"}
        rule = copy.copy(self.instance) if self.instance is not None else AlertRule()
        for name, value in fields.items():
            setattr(rule, name, value)
        try:
            rule.clean_fields(exclude=["name"])
            rule.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return data


class AlertSerializer(serializers.ModelSerializer):
    rule_name = serializers.CharField(source="rule.name", read_only=True)
    acknowledged_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Alert
        fields = [
            "id", "rule", "rule_name", "fingerprint", "labels", "status", "severity",
            "started_at", "fired_at", "ended_at", "value", "last_value", "last_evaluated_at",
            "acknowledged_at", "acknowledged_by", "silenced_until", "incident",
        ]  # fmt: skip
        read_only_fields = fields


class SilenceSerializer(serializers.Serializer):
    minutes = serializers.IntegerField(
        min_value=0, max_value=MAX_SILENCE_MINUTES,
        help_text="How long notifications stay quiet (0 ends a silence).",
    )  # fmt: skip


class AlertRuleViewSet(ObservabilityReadMixin, viewsets.ModelViewSet):
    """Conditions on metric series. Writes need the admin role."""

    queryset = AlertRule.objects.select_related("application", "service").prefetch_related(
        "channels"
    )
    serializer_class = AlertRuleSerializer
    filterset_class = AlertRuleFilter
    search_fields = ["name", "metric", "description"]
    ordering_fields = ["name", "severity", "created_at"]

    def perform_create(self, serializer: AlertRuleSerializer) -> None:
        serializer.instance = actions.alert_rule_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: AlertRuleSerializer) -> None:
        serializer.instance = actions.alert_rule_update(
            actor=self.request.user, rule=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: AlertRule) -> None:
        actions.alert_rule_delete(actor=self.request.user, rule=instance)


class AlertViewSet(ObservabilityReadMixin, viewsets.ReadOnlyModelViewSet):
    """Alerts, active first, then by severity, newest first. Filters: `status`, `severity`,
    `rule`. Operators acknowledge and silence (notifications stay quiet for `minutes`)."""

    queryset = queries.alerts_by_severity().select_related("rule", "acknowledged_by")
    serializer_class = AlertSerializer
    filterset_class = AlertFilter
    ordering_fields = ["started_at", "fired_at", "severity"]
    required_roles = {"acknowledge": Role.OPERATOR, "silence": Role.OPERATOR}

    @extend_schema(request=None, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request: Request, pk=None) -> Response:
        alert = actions.alert_acknowledge(alert=self.get_object(), actor=request.user)
        return Response(AlertSerializer(alert).data)

    @extend_schema(request=SilenceSerializer, responses=AlertSerializer)
    @action(detail=True, methods=["post"])
    def silence(self, request: Request, pk=None) -> Response:
        data = SilenceSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        alert = actions.alert_silence(
            alert=self.get_object(), actor=request.user, minutes=data.validated_data["minutes"]
        )
        return Response(AlertSerializer(alert).data)
