"""API shapes of the incidents app. Serializers validate input; incidents.actions writes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from incidents.choices import IncidentStatus, PublicPhase, Severity
from incidents.models import Incident, IncidentEvent, IncidentUpdate
from noc.api.dates import DateTimeField
from noc.limits import NOTES_MAX_CHARS, PUBLIC_UPDATE_MAX_CHARS
from services.models import Service

# The generate_series of the daily figures has one row per day: keep it bounded.
STATS_MAX_DAYS = 366
STATS_DEFAULT_DAYS = 30


def _username(user: User | None) -> str | None:
    return user.username if user is not None else None


@extend_schema_field({"type": "string", "nullable": True, "readOnly": True})
class UsernameField(serializers.ReadOnlyField):
    """A user foreign key shown as the username (null when the system did it)."""

    def to_representation(self, value: User | None) -> str | None:
        return _username(value)


class IncidentEventSerializer(serializers.ModelSerializer):
    actor = UsernameField(help_text="Username, or null when the system did it.")

    class Meta:
        model = IncidentEvent
        fields = ["id", "kind", "actor", "message", "data", "time"]
        read_only_fields = fields


class IncidentSerializer(serializers.ModelSerializer):
    """One incident in a list: its state and who did what, without the timeline."""

    service_name = serializers.CharField(source="service.name", read_only=True)
    assignee_username = UsernameField(source="assignee")
    acknowledged_by = UsernameField()
    resolved_by = UsernameField()
    closed_by = UsernameField()
    is_active = serializers.BooleanField(read_only=True)
    allowed_next = serializers.ListField(
        child=serializers.CharField(), read_only=True, help_text="Statuses it may change to."
    )

    class Meta:
        model = Incident
        fields = [
            "id", "service", "service_name", "title", "summary", "severity", "status", "source",
            "is_active", "allowed_next", "assignee", "assignee_username",
            "impact_started_at", "detected_at", "acknowledged_at", "acknowledged_by",
            "resolved_at", "resolved_by", "closed_at", "closed_by",
            "failed_checks", "reopen_count", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class PublicUpdateSerializer(serializers.ModelSerializer):
    author = UsernameField(help_text="Username, or null.")

    class Meta:
        model = IncidentUpdate
        fields = ["id", "phase", "message", "author", "time"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    events = IncidentEventSerializer(many=True, read_only=True, help_text="The timeline.")
    public_updates = PublicUpdateSerializer(
        many=True, read_only=True, help_text="What the status page shows, newest first."
    )

    class Meta(IncidentSerializer.Meta):
        fields = [
            *IncidentSerializer.Meta.fields,
            "root_cause", "resolution_notes", "dedup_key", "last_notified_at", "public_title",
            "public_updates", "events",
        ]  # fmt: skip
        read_only_fields = fields


class IncidentCreateSerializer(serializers.Serializer):
    service = serializers.SlugRelatedField(slug_field="id", queryset=Service.objects.all())
    title = serializers.CharField(max_length=200)
    severity = serializers.ChoiceField(choices=Severity.choices)
    summary = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NOTES_MAX_CHARS
    )


class IncidentUpdateSerializer(serializers.Serializer):
    """What admins may edit; the lifecycle changes only through the actions."""

    title = serializers.CharField(max_length=200, required=False)
    summary = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_CHARS)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)
    root_cause = serializers.CharField(required=False, allow_blank=True, max_length=NOTES_MAX_CHARS)
    resolution_notes = serializers.CharField(
        required=False, allow_blank=True, max_length=NOTES_MAX_CHARS
    )
    public_title = serializers.CharField(required=False, allow_blank=True, max_length=200)


class PublishSerializer(serializers.Serializer):
    phase = serializers.ChoiceField(choices=PublicPhase.choices)
    message = serializers.CharField(max_length=PUBLIC_UPDATE_MAX_CHARS)
    public_title = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="What the status page calls the incident from now on (blank: generic words "
        "naming the service; absent: unchanged). The title itself is never public.",
    )


class AssignSerializer(serializers.Serializer):
    assignee = serializers.PrimaryKeyRelatedField(
        queryset=User.objects.all(), allow_null=True, help_text="User id, or null to unassign."
    )


class StatusChangeSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=IncidentStatus.choices)
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NOTES_MAX_CHARS
    )


class CommentSerializer(serializers.Serializer):
    # The action checks INCIDENT_COMMENT_MAX_CHARS with its own message; this documents it.
    message = serializers.CharField(trim_whitespace=True, max_length=NOTES_MAX_CHARS)


class ResolveSerializer(serializers.Serializer):
    resolution_notes = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=NOTES_MAX_CHARS
    )


class ActiveQuerySerializer(serializers.Serializer):
    service = serializers.SlugRelatedField(slug_field="id", queryset=Service.objects.all())


class StatsQuerySerializer(serializers.Serializer):
    """?from=&to=&service=&tag=&severity= (default: the last 30 days)."""

    to = DateTimeField(required=False)
    service = serializers.SlugRelatedField(
        slug_field="id", queryset=Service.objects.all(), required=False
    )
    tag = serializers.CharField(required=False, max_length=50)
    severity = serializers.ChoiceField(choices=Severity.choices, required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        # `from` is a Python keyword, so it cannot be declared in the class body.
        return {"from": DateTimeField(required=False), **super().get_fields()}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        end = attrs.get("to") or timezone.now()
        try:
            start = attrs.get("from") or end - timedelta(days=STATS_DEFAULT_DAYS)
        except OverflowError:
            raise serializers.ValidationError(
                {"to": [f"Too early: the range starts {STATS_DEFAULT_DAYS} days before `to`."]}
            ) from None
        if start >= end:
            raise serializers.ValidationError({"from": ["`from` must be before `to`."]})
        if end - start > timedelta(days=STATS_MAX_DAYS):
            raise serializers.ValidationError(
                {"from": [f"The range is at most {STATS_MAX_DAYS} days."]}
            )
        service = attrs.get("service")
        return {
            "start": start,
            "end": end,
            "service": service.pk if service else None,
            "tag": attrs.get("tag") or None,
            "severity": attrs.get("severity") or None,
        }


# --- response shapes of the statistics (for the schema) ------------------------------------------


class DurationSerializer(serializers.Serializer):
    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)


class ServiceCountSerializer(serializers.Serializer):
    service = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField()


class DailySerializer(serializers.Serializer):
    date = serializers.DateField()
    opened = serializers.IntegerField()
    resolved = serializers.IntegerField()


class IncidentStatsSerializer(serializers.Serializer):
    to = serializers.DateTimeField()
    total = serializers.IntegerField(help_text="Incidents detected in the range.")
    active = serializers.IntegerField(help_text="Incidents active now.")
    resolved = serializers.IntegerField(help_text="Of those detected, how many are resolved.")
    unacknowledged = serializers.IntegerField(help_text="Of those detected, never acknowledged.")
    mtta_minutes = DurationSerializer(help_text="acknowledged_at − detected_at (acknowledged).")
    mttr_minutes = DurationSerializer(help_text="resolved_at − impact_started_at (resolved).")
    by_severity = serializers.DictField(child=serializers.IntegerField())
    by_status = serializers.DictField(child=serializers.IntegerField())
    by_service = ServiceCountSerializer(many=True)
    daily = DailySerializer(many=True)

    def get_fields(self) -> dict[str, serializers.Field]:
        return {"from": serializers.DateTimeField(), **super().get_fields()}
