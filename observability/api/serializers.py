"""API shapes of the observability app. Serializers validate input; actions.py writes."""

from __future__ import annotations

from rest_framework import serializers

from observability.models import Application, IngestKey


class ApplicationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Application
        fields = [
            "slug", "name", "environment", "owner", "description", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["created_at", "updated_at"]

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            # The slug is the id in URLs and in every client's configuration.
            fields["slug"].read_only = True
        return fields


class ApplicationCreatedSerializer(ApplicationSerializer):
    ingest_key = serializers.CharField(
        read_only=True, help_text="The application's first ingest key, shown only this once."
    )

    class Meta(ApplicationSerializer.Meta):
        fields = [*ApplicationSerializer.Meta.fields, "ingest_key"]


class IngestKeySerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = IngestKey
        fields = [
            "id", "application", "name", "prefix", "created_at", "created_by", "last_used_at",
            "revoked_at",
        ]  # fmt: skip
        read_only_fields = fields


class IngestKeyCreateSerializer(serializers.Serializer):
    application = serializers.SlugRelatedField(
        slug_field="slug", queryset=Application.objects.all()
    )
    name = serializers.CharField(max_length=100, default="default")


class IngestKeyCreatedSerializer(IngestKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The full key, shown only this once.")

    class Meta(IngestKeySerializer.Meta):
        fields = [*IngestKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class IngestResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    rejected = serializers.IntegerField()
    rejections = serializers.DictField(
        child=serializers.IntegerField(), help_text="Rejected points by reason."
    )
    errors = serializers.ListField(
        child=serializers.CharField(), help_text="The first rejection messages."
    )


class MetricPointInSerializer(serializers.Serializer):
    """Documentation of one point (the view decodes the body itself, for speed)."""

    name = serializers.CharField(help_text="Prometheus syntax: [a-zA-Z_:][a-zA-Z0-9_:]*.")
    labels = serializers.DictField(child=serializers.CharField(), required=False)
    value = serializers.FloatField()
    time = serializers.CharField(
        required=False, help_text="ISO 8601 or epoch seconds (a number); missing means now."
    )
    kind = serializers.CharField(required=False, help_text="gauge (default), counter, …")
    unit = serializers.CharField(required=False)


class MetricIngestSerializer(serializers.Serializer):
    application = serializers.SlugField(
        required=False, help_text="Required with a user's API key; implied by an ingest key."
    )
    points = MetricPointInSerializer(many=True)
