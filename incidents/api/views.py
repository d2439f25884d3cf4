"""Incidents API: lists and the timeline, statistics, and the lifecycle as explicit actions.

Every write calls incidents.actions. Their refusals become HTTP errors here: an illegal
transition is 409 with the current and allowed states, a second active incident of a service is
409 naming the existing one, and django ValidationErrors are 400 (noc.api.errors).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.choices import Role
from incidents import actions, queries
from incidents.api.serializers import (
    AssignSerializer,
    CommentSerializer,
    IncidentCreateSerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
    IncidentStatsSerializer,
    IncidentUpdateSerializer,
    PublishSerializer,
    ResolveSerializer,
    StatsQuerySerializer,
    StatusChangeSerializer,
)
from incidents.choices import Severity
from incidents.filters import IncidentFilter
from incidents.models import Incident
from noc.api.errors import Conflict
from services.models import Service

OPERATOR_ACTIONS = (
    "acknowledge", "assign", "change_status", "comment", "resolve", "close", "publish",
)  # fmt: skip
STATS_PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="Default: `to` − 30 days."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Default: now."),
    OpenApiParameter("service", str, description="Service id."),
    OpenApiParameter("tag", str, description="Service tag."),
    OpenApiParameter("severity", str, enum=Severity.values),
]


def as_api_error(exc: Exception) -> Exception:
    """The actions' refusals as the HTTP errors clients can act on."""
    if isinstance(exc, actions.TransitionNotAllowed):
        extra = {"current": exc.current, "wanted": exc.wanted, "allowed": exc.allowed}
        return Conflict(str(exc), extra=extra)
    if isinstance(exc, actions.AlreadyActive):
        return Conflict(str(exc), extra={"existing_incident": exc.existing.pk})
    return exc


class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents, newest first. Viewers read; operators work them (acknowledge, assign,
    status, comment, resolve, close); admins open them by hand and edit their text."""

    queryset = Incident.objects.all()
    serializer_class = IncidentSerializer
    filterset_class = IncidentFilter
    search_fields = ["title"]
    ordering_fields = [
        "id", "detected_at", "impact_started_at", "acknowledged_at", "resolved_at",
        "status", "severity", "title", "updated_at",
    ]  # fmt: skip
    ordering = ["-detected_at", "-id"]
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "head", "options"]
    required_roles = dict.fromkeys(OPERATOR_ACTIONS, Role.OPERATOR)

    def get_queryset(self):
        if self.action == "list":
            return queries.incidents_for_list()
        if self.action == "retrieve":
            return queries.incidents_with_timeline()
        return Incident.objects.all()  # actions lock and reload the row themselves

    def get_serializer_class(self):
        return IncidentDetailSerializer if self.action == "retrieve" else IncidentSerializer

    def handle_exception(self, exc: Exception) -> Response:
        return super().handle_exception(as_api_error(exc))

    # --- admin writes

    @extend_schema(request=IncidentCreateSerializer, responses={201: IncidentDetailSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Open an incident by hand (admin); 409 if the service already has an active one."""
        data = self._input(IncidentCreateSerializer)
        incident = actions.incident_create_manual(actor=request.user, **data)
        return self._detail(incident, status.HTTP_201_CREATED)

    @extend_schema(request=IncidentUpdateSerializer, responses=IncidentDetailSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        """Edit title, summary, severity, root cause or resolution notes (admin)."""
        incident = self.get_object()
        data = self._input(IncidentUpdateSerializer)
        # Only what differs: an unchanged PATCH writes no timeline event and no audit row.
        changed = {name: value for name, value in data.items() if getattr(incident, name) != value}
        if changed:
            incident = actions.incident_update(incident=incident, actor=request.user, **changed)
        return self._detail(incident)

    # --- operator actions (filter_backends=[]: the list's query filters must not apply here)

    @extend_schema(request=None, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def acknowledge(self, request: Request, pk: str | None = None) -> Response:
        """Acknowledge: someone is on it (409 when resolved, closed or already acknowledged)."""
        incident = actions.incident_acknowledge(incident=self.get_object(), actor=request.user)
        return self._detail(incident)

    @extend_schema(request=AssignSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        """Assign to a user (`null` unassigns); an inactive user is refused."""
        incident = self.get_object()
        data = self._input(AssignSerializer)
        incident = actions.incident_assign(incident=incident, actor=request.user, **data)
        return self._detail(incident)

    @extend_schema(request=StatusChangeSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], url_path="status", filter_backends=[])
    def change_status(self, request: Request, pk: str | None = None) -> Response:
        """Move to another status; 409 with `allowed` when the transition is not."""
        incident = self.get_object()
        data = self._input(StatusChangeSerializer)
        incident = actions.incident_change_status(incident=incident, actor=request.user, **data)
        return self._detail(incident)

    @extend_schema(request=CommentSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def comment(self, request: Request, pk: str | None = None) -> Response:
        """Add a comment to the timeline."""
        incident = self.get_object()
        data = self._input(CommentSerializer)
        actions.incident_comment(incident=incident, actor=request.user, **data)
        return self._detail(incident)

    @extend_schema(request=ResolveSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        """Resolve, optionally with resolution notes."""
        incident = self.get_object()
        data = self._input(ResolveSerializer)
        incident = actions.incident_resolve(incident=incident, actor=request.user, **data)
        return self._detail(incident)

    @extend_schema(request=None, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def close(self, request: Request, pk: str | None = None) -> Response:
        """Close a resolved incident: its status is final (comments and the post-incident notes
        can still be added); assigning it is refused."""
        incident = actions.incident_close(incident=self.get_object(), actor=request.user)
        return self._detail(incident)

    @extend_schema(request=PublishSerializer, responses=IncidentDetailSerializer)
    @action(detail=True, methods=["post"], filter_backends=[])
    def publish(self, request: Request, pk: str | None = None) -> Response:
        """Post an update for the public (the status page and its feed show it), optionally
        with the incident's public title."""
        incident = self.get_object()
        data = self._input(PublishSerializer)
        actions.incident_publish(incident=incident, actor=request.user, **data)
        return self._detail(incident)

    # --- reads beyond list and detail

    @extend_schema(
        parameters=[OpenApiParameter("service", str, required=True, description="Service id.")],
        responses=IncidentDetailSerializer,
    )
    @action(detail=False, filter_backends=[], pagination_class=None)
    def active(self, request: Request) -> Response:
        """The service's active incident, or 404 when it has none."""
        service_id = request.query_params.get("service", "").strip()
        if not service_id:
            raise serializers.ValidationError({"service": ["Give a service id: ?service=<id>."]})
        if not Service.objects.filter(pk=service_id).exists():
            raise exceptions.NotFound(f"Unknown service {service_id!r}.")
        incident = queries.incident_active_for(service_id)
        if incident is None:
            raise exceptions.NotFound(f"Service {service_id!r} has no active incident.")
        context = self.get_serializer_context()
        return Response(IncidentDetailSerializer(incident, context=context).data)

    @extend_schema(parameters=STATS_PARAMETERS, responses=IncidentStatsSerializer)
    @action(detail=False, filter_backends=[], pagination_class=None)
    def stats(self, request: Request) -> Response:
        """Totals, MTTA and MTTR (mean, median), counts by severity, status and service, and
        a daily series over a range (default: the last 30 days)."""
        query = StatsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        return Response(queries.incident_stats(**query.validated_data))

    # --- helpers

    def _input(self, serializer_class: type[serializers.Serializer]) -> dict[str, Any]:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _detail(self, incident: Incident, code: int = status.HTTP_200_OK) -> Response:
        """The incident as the detail page shows it, read again with its timeline."""
        fresh = queries.incidents_with_timeline().get(pk=incident.pk)
        context = self.get_serializer_context()
        return Response(IncidentDetailSerializer(fresh, context=context).data, status=code)
