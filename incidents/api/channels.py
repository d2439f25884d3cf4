"""Notification channels (admins only: they hold secrets) and the delivery log (operators).

A channel's HMAC secret is write-only: shown once, in the response that created the channel,
and masked in the audit trail. Writes go through incidents.delivery (validated and audited in
one transaction); a test send answers with the attempt's outcome.
"""

from __future__ import annotations

from typing import Any

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from accounts.choices import Role
from incidents import delivery
from incidents.choices import CHANNEL_EVENTS, ChannelKind, DeliveryStatus
from incidents.models import DeliveryAttempt, NotificationChannel, NotificationDelivery
from incidents.validation import channel_errors
from noc.api.filters import FilterSet
from services.api.serializers import ServiceIdsField

__all__ = ["register"]


def register(router: SimpleRouter) -> None:
    router.register(
        "notification-channels", NotificationChannelViewSet, basename="notification-channel"
    )
    router.register(
        "notification-deliveries", NotificationDeliveryViewSet, basename="notification-delivery"
    )


# --- serializers --------------------------------------------------------------------------------


class NotificationChannelSerializer(serializers.ModelSerializer):
    services = ServiceIdsField(
        required=False, help_text="Ids of the services routed here (default channels get all)."
    )
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=[(e.value, e.label) for e in CHANNEL_EVENTS]),
        required=False,
        help_text="Timeline events that notify; all notifiable ones when omitted.",
    )
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="HMAC-SHA256 key of webhook signatures; generated when omitted. Write-only.",
    )
    has_secret = serializers.SerializerMethodField()

    class Meta:
        model = NotificationChannel
        fields = [
            "id", "name", "kind", "enabled", "is_default", "services", "events", "min_severity",
            "email_to", "url", "headers", "secret", "has_secret", "created_at",
        ]  # fmt: skip
        read_only_fields = ["id", "created_at"]

    def get_has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # The model's rules, on the channel as it would be after this request (PATCH included).
        channel = NotificationChannel()
        for field in NotificationChannel._meta.concrete_fields:
            if field.attname in ("id", "created_at"):
                continue
            current = getattr(self.instance, field.attname) if self.instance else None
            value = attrs.get(field.name, current)
            if value is not None:
                setattr(channel, field.attname, value)
        errors = channel_errors(channel)
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class ChannelCreatedSerializer(NotificationChannelSerializer):
    """The creation response: the only one that shows the secret."""

    secret = serializers.CharField(read_only=True, help_text="Shown once; store it now.")


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    class Meta:
        model = DeliveryAttempt
        fields = ["id", "time", "ok", "response_code", "error", "duration_ms"]
        read_only_fields = fields


class NotificationDeliverySerializer(serializers.ModelSerializer):
    channel_name = serializers.CharField(source="channel.name", read_only=True)
    channel_kind = serializers.CharField(source="channel.kind", read_only=True)
    event_kind = serializers.SerializerMethodField(
        help_text="The timeline event's kind, the notice's kind (slo_ticket), or test."
    )
    attempt_log = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta:
        model = NotificationDelivery
        fields = [
            "id", "channel", "channel_name", "channel_kind", "incident", "event", "event_kind",
            "status", "attempts", "next_attempt_at", "sent_at", "last_error", "is_test",
            "notice", "created_at", "attempt_log",
        ]  # fmt: skip
        read_only_fields = fields

    def get_event_kind(self, row: NotificationDelivery) -> str:
        return row.kind


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    status = serializers.CharField()
    response_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
    duration_ms = serializers.FloatField(allow_null=True)
    delivery = NotificationDeliverySerializer()


# --- filters ------------------------------------------------------------------------------------


class NotificationChannelFilter(FilterSet):
    kind = django_filters.ChoiceFilter(choices=ChannelKind.choices)

    class Meta:
        model = NotificationChannel
        fields = ["kind", "enabled", "is_default"]


class NotificationDeliveryFilter(FilterSet):
    # Repeat for several values: ?status=retrying&status=failed.
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    channel = django_filters.NumberFilter(field_name="channel_id", label="Channel id")
    incident = django_filters.NumberFilter(field_name="incident_id", label="Incident id")

    class Meta:
        model = NotificationDelivery
        fields = ["status", "channel", "incident", "is_test"]


# --- views --------------------------------------------------------------------------------------


class NotificationChannelViewSet(viewsets.ModelViewSet):
    """Where notifications go. Admins only, reads included: channels hold secrets and URLs."""

    queryset = NotificationChannel.objects.prefetch_related("services")
    serializer_class = NotificationChannelSerializer
    filterset_class = NotificationChannelFilter
    search_fields = ["name", "url"]
    ordering_fields = ["id", "name", "kind", "created_at"]
    required_roles = {"read": Role.ADMIN, "test": Role.ADMIN}

    @extend_schema(responses={201: ChannelCreatedSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        return Response(
            ChannelCreatedSerializer(serializer.instance).data, status=status.HTTP_201_CREATED
        )

    def perform_create(self, serializer: NotificationChannelSerializer) -> None:
        self._save(serializer, NotificationChannel())

    def perform_update(self, serializer: NotificationChannelSerializer) -> None:
        self._save(serializer, serializer.instance)

    def perform_destroy(self, instance: NotificationChannel) -> None:
        delivery.channel_delete(actor=self.request.user, channel=instance)

    def _save(self, serializer: NotificationChannelSerializer, channel: NotificationChannel):
        fields = dict(serializer.validated_data)
        services = fields.pop("services", None)
        for name, value in fields.items():
            setattr(channel, name, value)
        serializer.instance = delivery.channel_save(
            actor=self.request.user, channel=channel, services=services
        )

    @extend_schema(request=None, responses=TestResultSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Send a test notification now and answer with the outcome of the attempt."""
        sent = delivery.channel_send_test(channel=self.get_object(), actor=request.user)
        attempt = sent.attempt_log.all()[0] if sent.attempt_log.all() else None
        result = {
            "ok": sent.status == DeliveryStatus.SENT,
            "status": sent.status,
            "response_code": attempt.response_code if attempt else None,
            "error": sent.last_error,
            "duration_ms": attempt.duration_ms if attempt else None,
            "delivery": sent,
        }
        return Response(TestResultSerializer(result).data)


class NotificationDeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    """The delivery log: what was sent where, retried or given up, with every attempt."""

    queryset = NotificationDelivery.objects.select_related("channel", "event").prefetch_related(
        "attempt_log"
    )
    serializer_class = NotificationDeliverySerializer
    filterset_class = NotificationDeliveryFilter
    ordering_fields = ["id", "created_at", "sent_at", "next_attempt_at"]
    required_roles = {"read": Role.OPERATOR}
