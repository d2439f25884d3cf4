"""Observability API: applications and their ingest keys (admins write, everyone reads) and
metric ingestion (ingest keys, or the operator role for any application it names)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from noc.api.throttles import IngestRateThrottle
from observability import actions, counters
from observability.api.serializers import (
    ApplicationCreatedSerializer,
    ApplicationSerializer,
    IngestKeyCreatedSerializer,
    IngestKeyCreateSerializer,
    IngestKeySerializer,
    IngestResultSerializer,
    MetricIngestSerializer,
)
from observability.authentication import (
    INGEST_AUTHENTICATION,
    CanIngest,
    ReadPermission,
)
from observability.filters import ApplicationFilter, IngestKeyFilter
from observability.ingestion import IngestError, application_for, decode_json_points, read_body
from observability.models import Application, IngestKey


def error_response(exc: IngestError) -> Response:
    """The project's one JSON error shape."""
    body = {"message": exc.message, "code": exc.code, "errors": {}}
    if exc.field:
        body["errors"] = {exc.field: [exc.message]}
    return Response(body, status=exc.status)


def request_body(request: Request) -> bytes:
    django_request = request._request
    length = django_request.META.get("CONTENT_LENGTH") or None
    try:
        content_length = int(length) if length is not None else None
    except ValueError as exc:
        raise IngestError(400, "invalid", "Content-Length is not a number.") from exc
    return read_body(
        django_request.read,
        content_length=content_length,
        content_encoding=django_request.headers.get("Content-Encoding", ""),
    )


class ObservabilityReadMixin:
    """Ingest keys are recognised here only to be refused with a clear message."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [ReadPermission]


class ApplicationViewSet(ObservabilityReadMixin, viewsets.ModelViewSet):
    """Applications that push metrics and traces, by slug. Creating one answers its first
    ingest key (`ingest_key`), shown only then."""

    queryset = Application.objects.all()
    serializer_class = ApplicationSerializer
    filterset_class = ApplicationFilter
    lookup_field = "slug"
    search_fields = ["slug", "name", "owner", "description"]
    ordering_fields = ["slug", "name", "created_at"]

    @extend_schema(responses={201: ApplicationCreatedSerializer})
    def create(self, request, *args, **kwargs) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        application, _ingest_key, key = actions.application_create(
            actor=request.user, **serializer.validated_data
        )
        application.ingest_key = key
        body = ApplicationCreatedSerializer(application, context=self.get_serializer_context())
        return Response(body.data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer: ApplicationSerializer) -> None:
        serializer.instance = actions.application_update(
            actor=self.request.user, application=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Application) -> None:
        actions.application_delete(actor=self.request.user, application=instance)


class IngestKeyViewSet(
    ObservabilityReadMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Ingest keys: each writes one application's data and reads nothing. The key itself is
    shown once, when created; DELETE revokes (the row stays, for the record)."""

    queryset = IngestKey.objects.select_related("application", "created_by")
    serializer_class = IngestKeySerializer
    filterset_class = IngestKeyFilter
    ordering_fields = ["created_at", "last_used_at"]

    @extend_schema(request=IngestKeyCreateSerializer, responses={201: IngestKeyCreatedSerializer})
    def create(self, request, *args, **kwargs) -> Response:
        data = IngestKeyCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ingest_key, key = actions.ingest_key_create(actor=request.user, **data.validated_data)
        ingest_key.key = key
        return Response(IngestKeyCreatedSerializer(ingest_key).data, status=201)

    def perform_destroy(self, instance: IngestKey) -> None:
        actions.ingest_key_revoke(actor=self.request.user, ingest_key=instance)

    @extend_schema(request=None, responses=IngestKeySerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None) -> Response:
        ingest_key = actions.ingest_key_revoke(actor=request.user, ingest_key=self.get_object())
        return Response(IngestKeySerializer(ingest_key).data)


class MetricIngestView(APIView):
    """Push metric points as JSON: `{"application": slug?, "points": [{"name", "labels",
    "value", "time", "kind", "unit"}]}` (gzip accepted). Answers how many points were accepted
    and rejected (by reason); a request whose every point was rejected is a 400 and writes
    nothing."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [CanIngest]
    # Its own per-key limit (NOC_API_RATE_INGEST), not the API's per-key and per-address ones.
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        request=MetricIngestSerializer,
        responses={200: IngestResultSerializer, 400: IngestResultSerializer},
    )
    def post(self, request: Request) -> Response:
        try:
            if request.content_type.split(";")[0].strip().lower() != "application/json":
                raise IngestError(
                    415, "unsupported_media_type", "Send the points as application/json."
                )
            batch = decode_json_points(request_body(request))
            ingest_key = request.auth if isinstance(request.auth, IngestKey) else None
            application = application_for(ingest_key=ingest_key, named=batch.application)
            result = actions.metric_points_ingest(application=application, points=batch.points)
        except IngestError as exc:
            counters.refused(counters.METRICS, exc.code)
            return error_response(exc)
        body = result.as_dict()
        if result.accepted == 0 and result.rejected > 0:
            reasons = ", ".join(f"{n} {reason}" for reason, n in result.rejections.items())
            body.update(message=f"Every point was rejected ({reasons}).", code="rejected")
            return Response(body, status=400)
        return Response(body)
