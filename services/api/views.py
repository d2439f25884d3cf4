"""Services API: service configuration, results, uptime, check-now, maintenance windows."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from noc.api.errors import Conflict
from noc.api.pagination import TimeCursorPagination
from noc.api.viewsets import AuditedModelViewSet
from services import actions, queries
from services.api.serializers import (
    CheckNowResultSerializer,
    CheckResultSerializer,
    MaintenanceWindowSerializer,
    ServiceSerializer,
    ServiceUpdateSerializer,
    UptimeSerializer,
)
from services.choices import CheckKind, ResultStatus
from services.execution import check_now
from services.filters import CheckResultFilter, MaintenanceWindowFilter, ServiceFilter
from services.models import CheckResult, MaintenanceWindow, Service

RESULT_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="At or after (ISO 8601)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Before (ISO 8601)."),
    OpenApiParameter("status", str, enum=ResultStatus.values),
]
WINDOW_PARAMETER = OpenApiParameter("window", str, enum=list(queries.WINDOWS), default="24h")


@extend_schema_view(
    update=extend_schema(request=ServiceUpdateSerializer),
    partial_update=extend_schema(request=ServiceUpdateSerializer),
)
class ServiceViewSet(viewsets.ModelViewSet):
    """Monitored services. Admins configure them; operators may run a check now."""

    queryset = Service.objects.all()
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    ordering_fields = ["id", "name", "status", "last_checked_at", "last_response_time_ms"]
    required_roles = {"check_now": Role.OPERATOR}

    def perform_create(self, serializer: ServiceSerializer) -> None:
        serializer.instance = actions.service_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: ServiceSerializer) -> None:
        serializer.instance = actions.service_update(
            actor=self.request.user, service=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Service) -> None:
        actions.service_delete(actor=self.request.user, service=instance)

    # Detail actions below read query parameters of their own (status, from, window): they
    # must not run the service FilterSet when looking the service up, hence filter_backends=[].

    @extend_schema(parameters=RESULT_PARAMETERS, responses=CheckResultSerializer(many=True))
    @action(
        detail=True, filter_backends=[], pagination_class=TimeCursorPagination, url_path="results"
    )
    def results(self, request: Request, pk: str | None = None) -> Response:
        """The service's check results, newest first (cursor pages)."""
        service = self.get_object()
        filterset = CheckResultFilter(
            request.query_params,
            queryset=CheckResult.objects.filter(service_id=service.pk),
            request=request,
        )
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        page = self.paginate_queryset(filterset.qs)
        return self.get_paginated_response(CheckResultSerializer(page, many=True).data)

    @extend_schema(parameters=[WINDOW_PARAMETER], responses=UptimeSerializer)
    @action(detail=True, filter_backends=[])
    def uptime(self, request: Request, pk: str | None = None) -> Response:
        """Uptime, failures and latency over a window, from the per-minute rollups."""
        service = self.get_object()
        try:
            uptime = queries.service_uptime(service.pk, request.query_params.get("window", "24h"))
        except queries.UnknownWindow as exc:
            raise serializers.ValidationError({"window": [str(exc)]}) from exc
        return Response(UptimeSerializer(uptime).data)

    @extend_schema(request=None, responses=CheckNowResultSerializer)
    @action(detail=True, methods=["post"], url_path="check-now", filter_backends=[])
    def check_now(self, request: Request, pk: str | None = None) -> Response:
        """Run the check at once, record and return its result (operator)."""
        service = self.get_object()
        if service.kind == CheckKind.PUSH:
            raise Conflict("A push service is checked by its pings; it cannot be checked now.")
        actions.audit_check_now(actor=request.user, service=service)
        recorded = check_now(service)
        if recorded is None:
            raise Conflict("Nothing was recorded: the service was deleted while it was checked.")
        return Response(CheckNowResultSerializer(recorded.result).data)

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def enable(self, request: Request, pk: str | None = None) -> Response:
        """Resume checking the service."""
        return self._set_enabled(True)

    @extend_schema(request=None, responses=ServiceSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        """Stop checking the service (status paused)."""
        return self._set_enabled(False)

    def _set_enabled(self, enabled: bool) -> Response:
        service = actions.service_set_enabled(
            actor=self.request.user, service=self.get_object(), enabled=enabled
        )
        return Response(self.get_serializer(service).data)


class MaintenanceWindowViewSet(AuditedModelViewSet):
    """Windows during which checks still run but their failures open no incident. Deletes are
    the base class's audited delete (services.actions has no rule for them)."""

    queryset = MaintenanceWindow.objects.prefetch_related("services")
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter
    ordering_fields = ["starts_at", "name", "created_at"]

    def perform_create(self, serializer: MaintenanceWindowSerializer) -> None:
        self._save(serializer, MaintenanceWindow())

    def perform_update(self, serializer: MaintenanceWindowSerializer) -> None:
        self._save(serializer, serializer.instance)

    def _save(self, serializer: MaintenanceWindowSerializer, window: MaintenanceWindow) -> None:
        fields = dict(serializer.validated_data)
        services = fields.pop("services", None)
        for name, value in fields.items():
            setattr(window, name, value)
        serializer.instance = actions.maintenance_window_save(
            actor=self.request.user, window=window, services=services
        )
