"""SLOs API: configuration (admin, through slos.actions), the cached status, the evaluation
history, the burn-down series, the risk summary, burn-rate alerts and the SLA report."""

from __future__ import annotations

from collections import Counter

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, viewsets
from rest_framework.decorators import action
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from slos import actions, queries
from slos.api.serializers import (
    BurnDownSerializer,
    HistoryQuerySerializer,
    ReportQuerySerializer,
    SLAReportSerializer,
    SLOAlertSerializer,
    SLOHistorySerializer,
    SLOSerializer,
    SLOStatusSerializer,
    SLOSummarySerializer,
    SLOUpdateSerializer,
)
from slos.choices import ViolationRisk
from slos.filters import SLOFilter
from slos.models import SLO
from slos.report import PERIODS, report_csv, sla_report

NEVER_EVALUATED = OpenApiResponse(description="The SLO has not been evaluated yet.")
HISTORY_PARAMETERS = [
    OpenApiParameter(
        "limit", int, description=f"Rows, newest first (default {queries.HISTORY_DEFAULT_LIMIT}, "
        f"at most {queries.HISTORY_MAX_LIMIT})."
    ),
    OpenApiParameter("from", OpenApiTypes.DATETIME, description="At or after (ISO 8601)."),
    OpenApiParameter("to", OpenApiTypes.DATETIME, description="Before (ISO 8601)."),
]  # fmt: skip
REPORT_PARAMETERS = [
    OpenApiParameter("period", str, enum=list(PERIODS), default="month"),
    OpenApiParameter("date", OpenApiTypes.DATE, description="A day of the period (default today)."),
    OpenApiParameter("service", str, description="Service id (default: every service)."),
    OpenApiParameter("format", str, enum=["json", "csv"], default="json"),
]


class CSVRenderer(BaseRenderer):
    """Text the view has already written as CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        return data.encode(self.charset) if isinstance(data, str) else b""


class ReportNegotiation(DefaultContentNegotiation):
    """An unknown ?format= is a 400 naming `format`, not DRF's bare 404."""

    def filter_renderers(self, renderers, format):
        matching = [renderer for renderer in renderers if renderer.format == format]
        if not matching:
            known = ", ".join(r.format for r in renderers if r.format != "api")
            message = f"Unknown format {format!r}; use {known}."
            raise exceptions.ValidationError({"format": [message]})
        return matching


@extend_schema_view(
    update=extend_schema(request=SLOUpdateSerializer),
    partial_update=extend_schema(request=SLOUpdateSerializer),
)
class SLOViewSet(viewsets.ModelViewSet):
    """Service level objectives by slug. Admins configure them; everyone reads them, their
    status and history. The status fields are the last evaluation's (every minute)."""

    queryset = queries.slos_for_list()
    serializer_class = SLOSerializer
    filterset_class = SLOFilter
    search_fields = ["id", "name", "description"]
    ordering_fields = [
        "id", "name", "service", "target", "window", "sli_type", "current_value",
        "budget_remaining_percent", "budget_remaining_minutes", "burn_rate", "risk",
        "budget_exhausted_at", "calculated_at",
    ]  # fmt: skip
    ordering = ["id"]
    lookup_value_regex = r"[-a-zA-Z0-9_]+"

    # --- admin writes, through the actions (validation and audit in one transaction)

    def perform_create(self, serializer: SLOSerializer) -> None:
        serializer.instance = actions.slo_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: SLOSerializer) -> None:
        serializer.instance = actions.slo_update(
            actor=self.request.user, slo=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: SLO) -> None:
        actions.slo_delete(actor=self.request.user, slo=instance)

    # --- reads of one SLO (filter_backends=[]: the list's query filters must not apply here)

    @extend_schema(responses={200: SLOStatusSerializer, 404: NEVER_EVALUATED})
    @action(detail=True, filter_backends=[])
    def status(self, request: Request, pk: str | None = None) -> Response:
        """The latest evaluation, or 404 when the SLO was never evaluated."""
        slo = self.get_object()
        row = queries.slo_latest_status(slo.pk)
        if row is None:
            raise exceptions.NotFound(f"SLO {slo.pk!r} has not been evaluated yet.")
        return Response(SLOStatusSerializer(row).data)

    @extend_schema(parameters=HISTORY_PARAMETERS, responses=SLOHistorySerializer)
    @action(detail=True, filter_backends=[], pagination_class=None)
    def history(self, request: Request, pk: str | None = None) -> Response:
        """Evaluations, newest first: at most `limit`, optionally within [from, to)."""
        slo = self.get_object()
        query = HistoryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = queries.slo_status_history(slo.pk, **query.validated_data)
        data = {"slo": slo.pk, "count": len(rows), "results": rows}
        return Response(SLOHistorySerializer(data).data)

    @extend_schema(responses=BurnDownSerializer)
    @action(detail=True, filter_backends=[], pagination_class=None)
    def budget(self, request: Request, pk: str | None = None) -> Response:
        """Error budget left over the current window, for a burn-down chart (≤ ~500 points)."""
        return Response(BurnDownSerializer(queries.slo_burn_down(self.get_object())).data)

    @extend_schema(responses=SLOAlertSerializer(many=True))
    @action(detail=True, filter_backends=[])
    def alerts(self, request: Request, pk: str | None = None) -> Response:
        """Burn-rate alerts of the SLO, newest first (pages)."""
        page = self.paginate_queryset(queries.slo_alerts(self.get_object().pk))
        return self.get_paginated_response(SLOAlertSerializer(page, many=True).data)

    # --- reads across SLOs

    @extend_schema(responses=SLOSummarySerializer)
    @action(detail=False, filter_backends=[], pagination_class=None)
    def summary(self, request: Request) -> Response:
        """Every SLO with compliance and risk: critical first, then the least budget left."""
        slos = queries.slo_summary()
        compliance = Counter(slo.compliant for slo in slos)
        risks = Counter(slo.violation_risk for slo in slos)
        data = {
            "total": len(slos),
            "compliant": compliance[True],
            "not_compliant": compliance[False],
            "not_evaluated": compliance[None],
            "by_risk": {risk: risks[risk] for risk in reversed(ViolationRisk.values)},
            "slos": slos,
        }
        return Response(SLOSummarySerializer(data).data)

    @extend_schema(
        parameters=REPORT_PARAMETERS,
        responses={200: SLAReportSerializer, (200, "text/csv"): OpenApiTypes.STR},
    )
    @action(
        detail=False,
        filter_backends=[],
        pagination_class=None,
        renderer_classes=[JSONRenderer, BrowsableAPIRenderer, CSVRenderer],
        content_negotiation_class=ReportNegotiation,
    )
    def report(self, request: Request) -> Response:
        """SLA report for a calendar month or quarter: per service uptime, downtime and
        incidents, and per SLO the budget used (JSON, or CSV with ?format=csv)."""
        query = ReportQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        report = sla_report(**query.validated_data)
        if request.accepted_renderer.format != "csv":
            return Response(SLAReportSerializer(report).data)
        disposition = f'attachment; filename="sla-{report.label}.csv"'
        return Response(report_csv(report), headers={"Content-Disposition": disposition})

    def finalize_response(self, request: Request, response, *args, **kwargs):
        # An error asked for as CSV is still answered as JSON: the error shape is JSON.
        renderer = getattr(request, "accepted_renderer", None)
        if getattr(response, "exception", False) and isinstance(renderer, CSVRenderer):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)
