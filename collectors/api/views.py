"""Collectors API: definitions (admin), run history, and the seed's status, start and stop."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import Role
from collectors import actions, queries
from collectors.api.serializers import (
    CollectorRunSerializer,
    CollectorSerializer,
    NotRunningSerializer,
    StartedSerializer,
    StartSerializer,
    StatusSerializer,
    StoppedSerializer,
    StopSerializer,
)
from collectors.filters import CollectorFilter, CollectorRunFilter
from collectors.models import Collector, CollectorRun
from noc.api.errors import Conflict


class NotRunning(exceptions.NotFound):
    """The seed's 404 for a stop of an unknown or stopped collector, naming what was asked."""

    def __init__(self, **extra) -> None:
        super().__init__("Collector not found or already stopped.")
        self.extra = extra


class CollectorViewSet(viewsets.ModelViewSet):
    """Collector definitions: what to pull, from where, how often. Admins configure them."""

    queryset = Collector.objects.select_related("application")
    serializer_class = CollectorSerializer
    filterset_class = CollectorFilter
    ordering_fields = ["id", "name", "kind", "created_at"]
    search_fields = ["name", "url", "symbol"]

    def perform_create(self, serializer: CollectorSerializer) -> None:
        serializer.instance = actions.collector_create(
            actor=self.request.user, **serializer.validated_data
        )

    def perform_update(self, serializer: CollectorSerializer) -> None:
        serializer.instance = actions.collector_update(
            actor=self.request.user, collector=serializer.instance, **serializer.validated_data
        )

    def perform_destroy(self, instance: Collector) -> None:
        actions.collector_delete(actor=self.request.user, collector=instance)


class CollectorRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Runs of collectors, newest first: running, stopped and in error, with their last error."""

    queryset = CollectorRun.objects.select_related("collector")
    serializer_class = CollectorRunSerializer
    filterset_class = CollectorRunFilter
    ordering_fields = ["id", "started_at", "stopped_at", "samples"]


class CollectorStatusView(APIView):
    """Running and erroring runs with their uptime in seconds (the seed's status). Runs found
    dead (no heartbeat within their allowance, or their worker's process gone on this host)
    are marked `error`, with the reason, before the answer."""

    @extend_schema(responses=StatusSerializer)
    def get(self, request: Request) -> Response:
        actions.collector_runs_mark_dead()
        now = timezone.now()
        runs = CollectorRunSerializer(queries.active_runs(), many=True, context={"now": now})
        return Response({"collectors": runs.data})


class CollectorStartView(APIView):
    """Start a run of a collector (operator): `{"collector": id}`, or the seed's
    `{"symbol": "ETHUSDT", "timeframe": "1m"}`, which creates or reuses an ohlcv collector.
    A collector that already runs is a 409 naming its run."""

    required_roles = {"write": Role.OPERATOR}

    @extend_schema(request=StartSerializer, responses={201: StartedSerializer})
    def post(self, request: Request) -> Response:
        data = StartSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        collector = fields.get("collector") or actions.collector_for_symbol(
            actor=request.user, symbol=fields["symbol"], timeframe=fields["timeframe"]
        )
        try:
            run = actions.collector_run_start(actor=request.user, collector=collector)
        except actions.RunAlreadyRunning as exc:
            raise Conflict(
                f"Collector {collector} is already running (run {exc.run.pk}).",
                extra={"id": exc.run.pk, "pid": exc.run.pid, "collector": collector.pk},
            ) from None
        except actions.CollectorDisabled as exc:
            raise Conflict(f"Collector {collector} is disabled; enable it first.") from exc
        if collector.symbol:
            message = f"Collector started for {collector.symbol} on timeframe {collector.timeframe}"
        else:
            message = f"Collector {collector} started"
        body = {"message": message, "id": run.pk, "pid": run.pid, "collector": collector.pk,
                "run": CollectorRunSerializer(run).data}  # fmt: skip
        return Response(body, status=status.HTTP_201_CREATED)


class CollectorStopView(APIView):
    """Stop a run (operator): `{"id": run id}`, or the seed's `{"pid": …}`, which stops every
    running run last executed by that worker process. An unknown or stopped one is a 404."""

    required_roles = {"write": Role.OPERATOR}

    @extend_schema(
        request=StopSerializer, responses={200: StoppedSerializer, 404: NotRunningSerializer}
    )
    def post(self, request: Request) -> Response:
        data = StopSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        if "pid" in fields:
            stopped = actions.collector_runs_stop_by_pid(actor=request.user, pid=fields["pid"])
            if not stopped:
                raise NotRunning(pid=fields["pid"])
            ids = [run.pk for run in stopped]
            return Response({"message": "Collector stopped.", "pid": fields["pid"], "stopped": ids})
        with transaction.atomic():
            run = CollectorRun.objects.filter(pk=fields["id"]).first()
            if run is None or not actions.collector_run_stop(actor=request.user, run=run):
                raise NotRunning(id=fields["id"])
        body = {"message": "Collector stopped.", "id": run.pk, "pid": run.pid, "stopped": [run.pk]}
        return Response(body)
