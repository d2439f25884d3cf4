from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from rest_framework import serializers

from accounts.choices import Role
from accounts.models import ApiKey, AuditEvent, User


class UserSerializer(serializers.ModelSerializer):
    role = serializers.ChoiceField(choices=Role.choices)
    password = serializers.CharField(
        write_only=True, required=False, style={"input_type": "password"}, allow_blank=False
    )

    class Meta:
        model = User
        fields = [
            "id", "username", "email", "first_name", "last_name", "role", "is_active",
            "date_joined", "last_login", "password",
        ]  # fmt: skip
        read_only_fields = ["id", "date_joined", "last_login"]
        extra_kwargs = {"email": {"required": True, "allow_blank": False}}

    def validate_password(self, value: str) -> str:
        user = self.instance or User(
            username=self.initial_data.get("username", ""), email=self.initial_data.get("email", "")
        )
        validate_password(value, user)
        return value


class MeSerializer(serializers.ModelSerializer):
    class Meta:
        model = User
        fields = ["id", "username", "email", "first_name", "last_name", "role", "last_login"]
        read_only_fields = fields


class ApiKeySerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = ApiKey
        fields = [
            "id", "name", "prefix", "username", "created_at", "last_used_at", "expires_at",
            "revoked_at", "is_active",
        ]  # fmt: skip
        read_only_fields = fields


class ApiKeyCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)
    expires_in_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)


class ApiKeyCreatedSerializer(ApiKeySerializer):
    key = serializers.CharField(read_only=True, help_text="Shown once; store it now.")

    class Meta(ApiKeySerializer.Meta):
        fields = [*ApiKeySerializer.Meta.fields, "key"]
        read_only_fields = fields


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = [
            "id", "time", "actor", "actor_label", "action", "verb", "target_type", "target_id",
            "target_label", "changes", "ip", "user_agent", "request_id",
        ]  # fmt: skip
        read_only_fields = fields
