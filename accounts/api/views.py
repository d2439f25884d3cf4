from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.generics import RetrieveAPIView
from rest_framework.response import Response

from accounts import actions
from accounts.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateSerializer,
    ApiKeySerializer,
    AuditEventSerializer,
    MeSerializer,
    UserSerializer,
)
from accounts.choices import Role
from accounts.filters import AuditEventFilter, UserFilter
from accounts.models import ApiKey, AuditEvent, User
from noc.api.permissions import has_role


class MeView(RetrieveAPIView):
    serializer_class = MeSerializer

    def get_object(self) -> User:
        return self.request.user


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Users are managed by admins; deactivate (is_active=false) rather than delete."""

    queryset = User.objects.all()
    serializer_class = UserSerializer
    filterset_class = UserFilter
    search_fields = ["username", "email", "first_name", "last_name"]
    ordering_fields = ["username", "date_joined", "last_login"]
    required_roles = {"read": Role.ADMIN}
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer: UserSerializer) -> None:
        serializer.instance = actions.user_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: UserSerializer) -> None:
        serializer.instance = actions.user_update(
            actor=self.request.user, user=serializer.instance, **serializer.validated_data
        )


class ApiKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Everyone manages their own keys; admins see and revoke everyone's. DELETE revokes.

    Keys are created by a signed-in person (or `manage.py create_api_key`), never by a key: a key
    minted by a key would outlive the expiry or revocation of the one that made it.
    """

    queryset = ApiKey.objects.select_related("user")
    serializer_class = ApiKeySerializer
    required_roles = {"create": Role.VIEWER, "destroy": Role.VIEWER, "revoke": Role.VIEWER}
    filterset_fields = ["revoked_at"]

    def get_queryset(self):
        keys = super().get_queryset()
        if has_role(self.request.user, Role.ADMIN):
            return keys
        return keys.filter(user=self.request.user)

    @extend_schema(request=ApiKeyCreateSerializer, responses={201: ApiKeyCreatedSerializer})
    def create(self, request, *args, **kwargs) -> Response:
        if isinstance(request.auth, ApiKey):
            raise PermissionDenied(
                "API keys are created by a signed-in person, not by another API key."
            )
        data = ApiKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, key = actions.api_key_create(
            actor=request.user, user=request.user, **data.validated_data
        )
        api_key.key = key
        return Response(ApiKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        actions.api_key_revoke(actor=self.request.user, api_key=instance)

    @extend_schema(request=None, responses=ApiKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None) -> Response:
        api_key = actions.api_key_revoke(actor=request.user, api_key=self.get_object())
        return Response(ApiKeySerializer(api_key).data)


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AuditEvent.objects.select_related("actor")
    serializer_class = AuditEventSerializer
    filterset_class = AuditEventFilter
    search_fields = ["target_label", "actor_label", "verb"]
    ordering_fields = ["time"]
    required_roles = {"read": Role.ADMIN}
