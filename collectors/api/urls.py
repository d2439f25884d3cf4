"""Routes of the collectors API, included under /api/. The seed's status, start and stop come
before the routers, whose detail routes would otherwise read them as ids."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from collectors.api import views

runs = SimpleRouter()
runs.register("collectors/runs", views.CollectorRunViewSet, basename="collector-run")
router = SimpleRouter()
router.register("collectors", views.CollectorViewSet, basename="collector")

urlpatterns = [
    path("collectors/status", views.CollectorStatusView.as_view(), name="collectors-status"),
    path("collectors/start", views.CollectorStartView.as_view(), name="collectors-start"),
    path("collectors/stop", views.CollectorStopView.as_view(), name="collectors-stop"),
    *runs.urls,
    *router.urls,
]
