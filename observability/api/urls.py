"""Routes of the observability API, included under /api/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from observability.api import views

router = SimpleRouter()
router.register("applications", views.ApplicationViewSet, basename="application")
router.register("ingest-keys", views.IngestKeyViewSet, basename="ingest-key")

urlpatterns = [
    path("metrics/ingest", views.MetricIngestView.as_view(), name="metrics-ingest"),
    *router.urls,
]
