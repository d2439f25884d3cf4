"""Logs over the API: `POST /api/logs/ingest` (JSON, gzip accepted) and
`GET /api/logs/search` (full-text query, filters, newest first, cursor pages, highlights)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from rest_framework import exceptions, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from noc.api.dates import DateTimeField
from noc.api.throttles import IngestRateThrottle
from observability import actions, counters
from observability.api.serializers import IngestResultSerializer
from observability.api.views import error_response, request_body
from observability.authentication import INGEST_AUTHENTICATION, CanIngest, ReadPermission
from observability.ingestion import IngestError, application_for
from observability.logs.decode import decode_json_logs
from observability.logs.query import LogQuery, QuerySyntaxError, cursor_decode, parse
from observability.logs.records import level_of
from observability.logs.store import log_store
from observability.models import Application, IngestKey
from observability.otlp import logs as otlp_logs

DEFAULT_SPAN = timedelta(hours=24)
MAX_PAGE_SIZE = 500


class LogLineInSerializer(serializers.Serializer):
    """Documentation of one line (the view decodes the body itself, for speed)."""

    time = serializers.CharField(required=False, help_text="ISO 8601 or epoch seconds; now.")
    level = serializers.CharField(required=False, help_text="trace … fatal (default info).")
    message = serializers.CharField(help_text="At most LOG_MAX_LINE_BYTES bytes.")
    service = serializers.CharField(required=False)
    host = serializers.CharField(required=False)
    trace_id = serializers.CharField(required=False, help_text="32 hexadecimal digits.")
    span_id = serializers.CharField(required=False, help_text="16 hexadecimal digits.")
    attributes = serializers.DictField(required=False)


class LogIngestSerializer(serializers.Serializer):
    application = serializers.SlugField(
        required=False, help_text="Required with a user's API key; implied by an ingest key."
    )
    logs = LogLineInSerializer(many=True)


class LogIngestView(APIView):
    """Push log lines as JSON: `{"application": slug?, "logs": [{"time", "level", "message",
    "service", "host", "trace_id", "span_id", "attributes"}]}` (gzip accepted). A malformed
    line refuses the request; lines with a time outside what is kept are counted as rejected."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]

    @extend_schema(
        request=LogIngestSerializer,
        responses={200: IngestResultSerializer, 400: IngestResultSerializer},
    )
    def post(self, request: Request) -> Response:
        try:
            if request.content_type.split(";")[0].strip().lower() != "application/json":
                raise IngestError(
                    415, "unsupported_media_type", "Send the log lines as application/json."
                )
            batch = decode_json_logs(request_body(request))
            ingest_key = request.auth if isinstance(request.auth, IngestKey) else None
            application = application_for(ingest_key=ingest_key, named=batch.application)
            result = actions.log_lines_ingest(application=application, lines=batch.lines)
        except IngestError as exc:
            counters.refused(counters.LOGS, exc.code)
            return error_response(exc)
        body = result.as_dict()
        if result.accepted == 0 and result.rejected > 0:
            reasons = ", ".join(f"{n} {reason}" for reason, n in result.rejections.items())
            body.update(message=f"Every line was rejected ({reasons}).", code="rejected")
            return Response(body, status=400)
        return Response(body)


OTLP_STATUS = inline_serializer(
    "OtlpStatus",
    {
        "code": serializers.IntegerField(help_text="A google.rpc code (3: invalid argument)."),
        "message": serializers.CharField(),
    },
)
OTLP_LOGS_RESPONSE = inline_serializer(
    "OtlpExportLogsResponse",
    {
        "partialSuccess": inline_serializer(
            "OtlpLogsPartialSuccess",
            {
                "rejectedLogRecords": serializers.CharField(help_text="A count (int64)."),
                "errorMessage": serializers.CharField(),
            },
            required=False,
        )
    },
)


class OtlpLogsView(APIView):
    """OTLP/HTTP logs: `POST /v1/logs`, protobuf or JSON, gzip accepted. An ingest key writes
    its application; a user API key (operator or above) names one in `?application=` or
    `X-NOC-Application`. Every answer, refusals included, is OTLP's, in the request's
    encoding; records whose time is not kept are reported as a partial success."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [CanIngest]
    throttle_classes = [IngestRateThrottle]
    signal = counters.LOGS  # what the ingestion counters count its refusals under

    @extend_schema(
        operation_id="otlp_logs_export",
        parameters=[OpenApiParameter("application", str, description="With a user's API key.")],
        request={
            "application/json": OpenApiTypes.OBJECT,
            "application/x-protobuf": OpenApiTypes.BINARY,
        },
        responses={
            200: OTLP_LOGS_RESPONSE,
            **{status: OTLP_STATUS for status in (400, 401, 403, 413, 415, 429)},
        },
        description="An OTLP ExportLogsServiceRequest; answers in the request's encoding.",
    )
    def post(self, request: Request) -> HttpResponse:
        return self.export(request)

    def export(self, request: Request) -> HttpResponse:
        """The one flow of every OTLP signal: decode, find the application, ingest, answer
        with the partial success in the request's encoding (refusals in OTLP's form)."""
        encoding = otlp_logs.JSON
        try:
            encoding = otlp_logs.encoding_of(request.content_type)
            export = self.decode(request_body(request), encoding)
            ingest_key = request.auth if isinstance(request.auth, IngestKey) else None
            named = request.query_params.get("application") or request.headers.get(
                "X-NOC-Application"
            )
            application = application_for(ingest_key=ingest_key, named=named)
            result = self.ingest(application, export)
        except IngestError as exc:
            return self.refuse(exc)
        reply = self.reply(result.rejected)
        if result.rejected:
            reply.partial_success.error_message = "; ".join(result.examples[:3])
        data, content_type = otlp_logs.answer(reply, encoding)
        return HttpResponse(data, content_type=content_type)

    # The signal's own parts.
    def decode(self, body: bytes, encoding: str):
        return otlp_logs.parse(body, encoding)

    def ingest(self, application, export):
        return actions.log_otlp_ingest(application=application, request=export)

    def reply(self, rejected: int):
        reply = ExportLogsServiceResponse()
        if rejected:
            reply.partial_success.rejected_log_records = rejected
        return reply

    def refuse(self, exc: IngestError) -> HttpResponse:
        counters.refused(self.signal, exc.code)
        try:
            encoding = otlp_logs.encoding_of(self.request.content_type)
        except IngestError:
            encoding = otlp_logs.JSON
        data, content_type = otlp_logs.error_answer(exc, encoding)
        return HttpResponse(data, status=exc.status, content_type=content_type)

    def handle_exception(self, exc):
        """Authentication, permission and rate-limit refusals in OTLP's form too."""
        if not isinstance(exc, exceptions.APIException):
            return super().handle_exception(exc)
        status = exc.status_code
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            status = 401
        response = self.refuse(IngestError(status, "refused", str(exc.detail)))
        if status == 401:
            response["WWW-Authenticate"] = 'Bearer realm="ingest"'
        if isinstance(exc, exceptions.Throttled) and exc.wait:
            response["Retry-After"] = str(int(exc.wait))
        return response


class LogSearchParams(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    level = serializers.CharField(required=False, help_text="One level or several: error,fatal.")
    application = serializers.SlugField(required=False)
    service = serializers.CharField(required=False, max_length=200)
    trace_id = serializers.RegexField(r"^[0-9a-fA-F]{32}$", required=False)
    # `from` is a Python keyword: declared below under its API name.
    to = DateTimeField(required=False)
    cursor = serializers.CharField(required=False)
    page_size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_PAGE_SIZE)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = DateTimeField(required=False)
        return fields

    def validate_level(self, value: str) -> list[str]:
        levels = []
        for name in value.split(","):
            level = level_of(name)
            if level is None:
                raise serializers.ValidationError(
                    f"{name[:20]!r} is not a level (trace, debug, info, warn, error, fatal)."
                )
            levels.append(level)
        return levels

    def validate_application(self, value: str) -> Application:
        application = Application.objects.filter(slug=value).first()
        if application is None:
            raise serializers.ValidationError(f"Unknown application {value!r}.")
        return application

    def validate(self, data: dict) -> dict:
        since, until = data.get("from"), data.get("to")
        if since and until and since >= until:
            raise serializers.ValidationError({"from": ["`from` must be before `to`."]})
        return data


class LogHitSerializer(serializers.Serializer):
    id = serializers.CharField(source="uid")
    time = serializers.DateTimeField()
    application = serializers.CharField()
    level = serializers.CharField()
    service = serializers.CharField()
    host = serializers.CharField()
    trace_id = serializers.CharField()
    span_id = serializers.CharField()
    message = serializers.CharField()
    attributes = serializers.DictField()
    highlight = serializers.ListField(
        child=serializers.CharField(),
        help_text="Fragments of the message with the matched words in <mark> (HTML-escaped).",
    )
    trace = serializers.SerializerMethodField(help_text="The line's trace, when it has one.")

    def get_trace(self, hit) -> str | None:
        if not hit.trace_id:
            return None
        return self.context["request"].build_absolute_uri(trace_path(hit.trace_id))


class LogPageSerializer(serializers.Serializer):
    results = LogHitSerializer(many=True)
    next = serializers.CharField(allow_null=True)


def trace_path(trace_id: str) -> str:
    return f"/api/traces/{trace_id}/"


def logs_path(trace_id: str) -> str:
    """Where a trace's logs are listed (the trace page links here)."""
    return f"/api/logs/search?{urlencode({'trace_id': trace_id})}"


class LogSearchView(APIView):
    """Search log lines, newest first. `q`: words (all of them), "a phrase", -word (without
    it), pay* (a word starting with pay), *text* (anywhere, as written). Filters: `level` (one
    or several, comma-separated), `application`, `service`, `trace_id`, `from`/`to` (ISO 8601;
    the last 24 hours when neither is given). Pages: follow `next`."""

    authentication_classes = INGEST_AUTHENTICATION
    permission_classes = [ReadPermission]

    @extend_schema(
        parameters=[
            LogSearchParams,
            OpenApiParameter("from", str, description="ISO 8601 start (inclusive)."),
        ],
        responses=LogPageSerializer,
    )
    def get(self, request: Request) -> Response:
        params = LogSearchParams(data=request.query_params)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        store = log_store()
        try:
            query = self.build_query(data, store)
            page = store.search(query)
        except QuerySyntaxError as exc:
            field = "cursor" if "cursor" in str(exc) else "q"
            return error_response(IngestError(400, "invalid", str(exc), field))
        next_url = None
        if page.next_cursor:
            args = request.query_params.copy()
            args["cursor"] = page.next_cursor
            next_url = request.build_absolute_uri(f"{request.path}?{args.urlencode()}")
        body = {"results": page.hits, "next": next_url}
        return Response(LogPageSerializer(body, context={"request": request}).data)

    @staticmethod
    def build_query(data: dict, store) -> LogQuery:
        since, until = data.get("from"), data.get("to")
        if since is None and until is None:
            until = timezone.now() + timedelta(minutes=10)  # lines a little ahead too
            since = until - DEFAULT_SPAN - timedelta(minutes=10)
        application = data.get("application")
        cursor = data.get("cursor")
        return LogQuery(
            terms=parse(data["q"]),
            levels=data.get("level", []),
            application_ids=[application.pk] if application else [],
            applications=[application.slug] if application else [],
            service=data.get("service", ""),
            trace_id=data.get("trace_id", "").lower(),
            since=since,
            until=until,
            after=store.after_values(cursor_decode(cursor)) if cursor else None,
            size=data.get("page_size", 50),
        )
