"""Traces over the API: OTLP/HTTP `POST /v1/traces` (protobuf or JSON, gzip accepted),
`GET /api/traces/` (one row per trace, newest first) and `GET /api/traces/{trace_id}/` (its span
tree, with a link to its logs)."""

from __future__ import annotations

import re
from datetime import timedelta

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from noc.api.dates import DateTimeField
from observability import actions, counters
from observability.api.logs import OTLP_STATUS, OtlpLogsView, logs_path, trace_path
from observability.api.views import error_response
from observability.authentication import INGEST_AUTHENTICATION, ReadPermission
from observability.choices import SpanStatus
from observability.ingestion import IngestError
from observability.logs.query import QuerySyntaxError, cursor_decode, cursor_encode
from observability.models import Application
from observability.otlp import logs as otlp
from observability.points import to_us
from observability.traces.query import (
    TraceFilter,
    TraceQueryTooCostly,
    trace_get,
    trace_page,
)

DEFAULT_SPAN = timedelta(hours=24)
MAX_PAGE_SIZE = 200
TRACE_ID = re.compile(r"[0-9a-fA-F]{32}")

OTLP_TRACES_RESPONSE = inline_serializer(
    "OtlpExportTraceResponse",
    {
        "partialSuccess": inline_serializer(
            "OtlpTracesPartialSuccess",
            {
                "rejectedSpans": serializers.CharField(help_text="A count (int64)."),
                "errorMessage": serializers.CharField(),
            },
            required=False,
        )
    },
)


class OtlpTracesView(OtlpLogsView):
    """OTLP/HTTP traces: `POST /v1/traces`, protobuf or JSON, gzip accepted, scoped and
    answered as /v1/logs is (its refusals, in OTLP's form, come from that view). An ingest key
    writes its application; a user API key (operator or above) names one in `?application=`
    or `X-NOC-Application`. Spans whose start is not kept are a partial success."""

    signal = counters.SPANS

    @extend_schema(
        operation_id="otlp_traces_export",
        parameters=[OpenApiParameter("application", str, description="With a user's API key.")],
        request={
            "application/json": OpenApiTypes.OBJECT,
            "application/x-protobuf": OpenApiTypes.BINARY,
        },
        responses={
            200: OTLP_TRACES_RESPONSE,
            **{status: OTLP_STATUS for status in (400, 401, 403, 413, 415, 429)},
        },
        description="An OTLP ExportTraceServiceRequest; answers in the request's encoding.",
    )
    def post(self, request: Request) -> HttpResponse:
        return self.export(request)

    def decode(self, body: bytes, encoding: str):
        return otlp.parse(body, encoding, ExportTraceServiceRequest())

    def ingest(self, application, export):
        return actions.spans_otlp_ingest(application=application, request=export)

    def reply(self, rejected: int):
        reply = ExportTraceServiceResponse()
        if rejected:
            reply.partial_success.rejected_spans = rejected
        return reply


# --- reading ---------------------------------------------------------------------------------


class TraceListParams(serializers.Serializer):
    application = serializers.SlugField(required=False)
    service = serializers.CharField(required=False, max_length=200)
    name = serializers.CharField(required=False, max_length=4096)
    status = serializers.ChoiceField(choices=SpanStatus.choices, required=False)
    min_duration_ms = serializers.FloatField(required=False, min_value=0, max_value=10**9)
    # `from` is a Python keyword: declared below under its API name.
    to = DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = DateTimeField(required=False)
        return fields

    def validate_application(self, value: str) -> Application:
        application = Application.objects.filter(slug=value).first()
        if application is None:
            raise serializers.ValidationError(f"Unknown application {value!r}.")
        return application

    def validate_cursor(self, value: str) -> tuple[int, str]:
        try:
            start_us, trace_id = cursor_decode(value)
        except QuerySyntaxError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        if type(start_us) is not int or not isinstance(trace_id, str):
            raise serializers.ValidationError("The cursor is not one this API gave.")
        if not TRACE_ID.fullmatch(trace_id):
            raise serializers.ValidationError("The cursor is not one this API gave.")
        return start_us, trace_id

    def validate(self, data: dict) -> dict:
        since, until = data.get("from"), data.get("to")
        if since is None and until is None:
            until = timezone.now() + timedelta(minutes=10)  # spans a little ahead too
            since = until - DEFAULT_SPAN - timedelta(minutes=10)
        elif since is None:
            since = until - DEFAULT_SPAN
        elif until is None:
            until = since + DEFAULT_SPAN
        if since >= until:
            raise serializers.ValidationError({"from": ["`from` must be before `to`."]})
        data["from"], data["to"] = since, until
        return data


class SpanSerializer(serializers.Serializer):
    """Documentation of one span as the trace endpoints answer it."""

    trace_id = serializers.CharField()
    span_id = serializers.CharField()
    parent_span_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    kind = serializers.CharField()
    application = serializers.CharField()
    service = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    status = inline_serializer(
        "SpanStatus", {"code": serializers.CharField(), "message": serializers.CharField()}
    )
    attributes = serializers.DictField()
    events = serializers.ListField(child=serializers.DictField())
    links = serializers.ListField(child=serializers.DictField())


class SpanNodeSerializer(SpanSerializer):
    orphan = serializers.BooleanField(help_text="Its parent is not in the trace.")
    children = serializers.ListField(
        child=serializers.DictField(), help_text="Spans of the same shape, nested."
    )


class TraceRowSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    span_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    root = SpanSerializer(help_text="Its first span without a parent (or its first span).")
    url = serializers.CharField()


class TracePageSerializer(serializers.Serializer):
    results = TraceRowSerializer(many=True)
    next = serializers.CharField(allow_null=True)


class TraceSerializer(serializers.Serializer):
    trace_id = serializers.CharField()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    duration_ms = serializers.FloatField()
    span_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    truncated = serializers.BooleanField(help_text="More spans than the tree holds.")
    services = serializers.ListField(child=serializers.CharField())
    applications = serializers.ListField(child=serializers.CharField())
    logs = serializers.CharField(help_text="The trace's log lines (/api/logs/search).")
    spans = SpanNodeSerializer(many=True, help_text="Roots and orphans, children nested.")


class TraceListView(APIView):
    """Traces with a span in the range matching every filter, newest first, one row per trace
    with its root span, span count and duration. `application`, `service`, `name` (exact),
    `status` (unset, ok, error) and `min_duration_ms` (a span at least that long) select the
    span; `from`/`to` ISO 8601 (the last 24 hours when neither is given). Pages: follow
    `next`."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [ReadPermission]

    @extend_schema(
        operation_id="traces_list",
        parameters=[
            TraceListParams,
            OpenApiParameter("from", str, description="ISO 8601 start (inclusive)."),
        ],
        responses=TracePageSerializer,
    )
    def get(self, request: Request) -> Response:
        params = TraceListParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        application = data.get("application")
        query = TraceFilter(
            since=data["from"], until=data["to"],
            application_id=application.pk if application else None,
            service=data.get("service", ""), name=data.get("name", ""),
            status=data.get("status", ""),
            min_duration_us=round(data.get("min_duration_ms", 0) * 1000),
            after=data.get("cursor"), size=data.get("page_size", 50),
        )  # fmt: skip
        try:
            rows = trace_page(query)
        except TraceQueryTooCostly:
            return error_response(
                IngestError(400, "too_costly", "The search took too long: narrow the range.")
            )
        more, rows = len(rows) > query.size, rows[: query.size]
        results = [
            {
                "trace_id": row.trace_id,
                "start": row.start,
                "end": row.end,
                "duration_ms": row.duration_us / 1000,
                "span_count": row.span_count,
                "error_count": row.error_count,
                "root": row.root,
                "url": request.build_absolute_uri(trace_path(row.trace_id)),
            }
            for row in rows
        ]
        next_url = None
        if more and rows:
            args = request.query_params.copy()
            args["cursor"] = cursor_encode([rows[-1].key_us, rows[-1].trace_id])
            next_url = request.build_absolute_uri(f"{request.path}?{args.urlencode()}")
        return Response({"results": results, "next": next_url})


class TraceDetailView(APIView):
    """One trace: its spans as a tree (children nested under their parent in start order;
    roots and orphans, whose parent never arrived, at the top), and a link to its logs."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [ReadPermission]

    @extend_schema(operation_id="traces_retrieve", responses=TraceSerializer)
    def get(self, request: Request, trace_id: str) -> Response:
        if not TRACE_ID.fullmatch(trace_id):
            return error_response(
                IngestError(400, "invalid", "A trace id is 32 hexadecimal digits.", "trace_id")
            )
        trace_id = trace_id.lower()
        trace = trace_get(trace_id)
        if trace is None:
            return error_response(
                IngestError(404, "not_found", f"No span of trace {trace_id} is stored.")
            )
        return Response(
            {
                "trace_id": trace.trace_id,
                "start": trace.start,
                "end": trace.end,
                "duration_ms": (to_us(trace.end) - to_us(trace.start)) / 1000,
                "span_count": trace.span_count,
                "error_count": trace.error_count,
                "truncated": trace.truncated,
                "services": trace.services,
                "applications": trace.applications,
                "logs": request.build_absolute_uri(logs_path(trace_id)),
                "spans": trace.spans,
            }
        )
