"""Metrics over the API beside `POST /api/metrics/ingest`: OTLP/HTTP `POST /v1/metrics`,
`GET /api/metrics/query` (a metric's series bucketed and aggregated, from raw points or a
rollup), `GET /api/metrics/series` (names and label sets) and the `/api/metrics/` index."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceResponse,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from observability import actions, counters, metric_query
from observability.api.logs import OTLP_STATUS, OtlpLogsView
from observability.api.views import ObservabilityReadMixin, error_response
from observability.choices import QueryAggregation
from observability.filters import MetricSeriesFilter
from observability.ingestion import IngestError
from observability.models import MetricSeries
from observability.otlp import metrics as otlp_metrics

OTLP_METRICS_RESPONSE = inline_serializer(
    "OtlpExportMetricsResponse",
    {
        "partialSuccess": inline_serializer(
            "OtlpMetricsPartialSuccess",
            {
                "rejectedDataPoints": serializers.CharField(help_text="A count (int64)."),
                "errorMessage": serializers.CharField(),
            },
            required=False,
        )
    },
)


class OtlpMetricsView(OtlpLogsView):
    """OTLP/HTTP metrics: `POST /v1/metrics`, protobuf or JSON, gzip accepted. An ingest key
    writes its application; a user API key (operator or above) names one in `?application=`
    or `X-NOC-Application`. Points the limits refuse are reported as a partial success
    (`rejected_data_points`); refusals of the request itself are OTLP's `Status`, in the
    request's encoding (inherited from the logs endpoint)."""

    signal = counters.METRICS

    @extend_schema(
        operation_id="otlp_metrics_export",
        parameters=[OpenApiParameter("application", str, description="With a user's API key.")],
        request={
            "application/json": OpenApiTypes.OBJECT,
            "application/x-protobuf": OpenApiTypes.BINARY,
        },
        responses={
            200: OTLP_METRICS_RESPONSE,
            **{status: OTLP_STATUS for status in (400, 401, 403, 413, 415, 429)},
        },
        description="An OTLP ExportMetricsServiceRequest; answers in the request's encoding.",
    )
    def post(self, request: Request) -> HttpResponse:
        return self.export(request)

    def decode(self, body: bytes, encoding: str):
        return otlp_metrics.parse(body, encoding)

    def ingest(self, application, export):
        return actions.metric_otlp_ingest(application=application, request=export)

    def reply(self, rejected: int):
        reply = ExportMetricsServiceResponse()
        if rejected:
            reply.partial_success.rejected_data_points = rejected
        return reply


# --- reading -------------------------------------------------------------------------------------


class MetricPointOutSerializer(serializers.Serializer):
    time = serializers.DateTimeField(help_text="The step's start.")
    value = serializers.FloatField()


class MetricQuerySeriesSerializer(serializers.Serializer):
    application = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    kind = serializers.CharField()
    unit = serializers.CharField()
    points = MetricPointOutSerializer(many=True)


class MetricQueryAnswerSerializer(serializers.Serializer):
    name = serializers.CharField()
    agg = serializers.ChoiceField(choices=QueryAggregation.choices)
    source = serializers.CharField(
        help_text="What was read: raw (points), metrics_hourly or metrics_daily."
    )
    exact = serializers.BooleanField(
        help_text="False for p95 over steps spanning several rollup buckets (their largest p95)."
    )
    step = serializers.IntegerField(help_text="Seconds.")
    # `from` is a Python keyword: declared in get_fields.
    to = serializers.DateTimeField()
    series = MetricQuerySeriesSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(help_text="Start, floored to the step.")
        return fields


QUERY_PARAMETERS = [
    OpenApiParameter("name", str, required=True, description="The metric name."),
    OpenApiParameter(
        "labels", str, description='Series whose labels include these: {"k": "v"} or k=v,k2=v2.'
    ),
    OpenApiParameter("application", str, description="An application's slug."),
    OpenApiParameter("from", str, description="ISO 8601, epoch seconds, now, -1h, -7d (-1h)."),
    OpenApiParameter("to", str, description="As `from` (now)."),
    OpenApiParameter(
        "step", str, description="30s, 5m, 1h, 1d or seconds; chosen for ~200 steps if absent."
    ),
    OpenApiParameter("agg", str, enum=QueryAggregation.values, description="avg by default."),
]


class MetricQueryView(ObservabilityReadMixin, APIView):
    """A metric's series (by name, labels and application), one value per step, reduced by
    `agg`. Steps under an hour read raw points; whole hours `metrics_hourly`; whole days
    `metrics_daily` (`source` says which). At most METRICS_QUERY_MAX_POINTS points and
    METRICS_QUERY_TIMEOUT_MS of reading: beyond either, a 400 saying what to change."""

    @extend_schema(parameters=QUERY_PARAMETERS, responses=MetricQueryAnswerSerializer)
    def get(self, request: Request) -> Response:
        try:
            query = metric_query.build(request.query_params)
            answer = metric_query.run(query)
        except metric_query.QueryError as exc:
            code = "not_found" if exc.status == 404 else "invalid"
            return error_response(IngestError(exc.status, code, exc.message, exc.field))
        # The answer is plain data already: the serializer documents it (thousands of points
        # through nested serializers would cost more than the read).
        return Response(answer)


class MetricSeriesSerializer(serializers.ModelSerializer):
    application = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = MetricSeries
        fields = ["id", "application", "name", "labels", "kind", "unit", "created_at"]
        read_only_fields = fields


class MetricSeriesView(ObservabilityReadMixin, generics.ListAPIView):
    """Metric series: names and label sets, by name then labels. Filters: `application`
    (slug), `prefix` (of the name), `name` (exact), `kind`."""

    queryset = MetricSeries.objects.select_related("application").order_by("name", "id")
    serializer_class = MetricSeriesSerializer
    filterset_class = MetricSeriesFilter
    ordering_fields = ["name", "created_at"]


class MetricsIndexView(ObservabilityReadMixin, APIView):
    """The metrics endpoints."""

    @extend_schema(
        responses=inline_serializer(
            "MetricsIndex",
            {n: serializers.URLField() for n in ("query", "series", "ingest", "otlp")},
        )
    )
    def get(self, request: Request) -> Response:
        return Response(
            {
                "query": reverse("metrics-query", request=request),
                "series": reverse("metrics-series", request=request),
                "ingest": reverse("metrics-ingest", request=request),
                "otlp": reverse("otlp-metrics", request=request),
            }
        )
