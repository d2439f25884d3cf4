"""Routes of the observability API, included under /api/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from observability.api import alerts, logs, metrics, traces, views

router = SimpleRouter()
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("ingest-keys", views.IngestKeyViewSet, basename="ingest-key")
router.register("alert-rules", alerts.AlertRuleViewSet, basename="alert-rule")
router.register("alerts", alerts.AlertViewSet, basename="alert")

urlpatterns = [
    path("metrics/", metrics.MetricsIndexView.as_view(), name="metrics-index"),
    path("metrics/ingest", views.MetricIngestView.as_view(), name="metrics-ingest"),
    path("metrics/query", metrics.MetricQueryView.as_view(), name="metrics-query"),
    path("metrics/series", metrics.MetricSeriesView.as_view(), name="metrics-series"),
    path("logs/ingest", logs.LogIngestView.as_view(), name="logs-ingest"),
    path("logs/search", logs.LogSearchView.as_view(), name="logs-search"),
    path("traces/", traces.TraceListView.as_view(), name="trace-list"),
    path("traces/<str:trace_id>/", traces.TraceDetailView.as_view(), name="trace-detail"),
    *router.urls,
]
