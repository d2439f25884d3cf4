"""Routes of the incidents API, included under /api/: incidents, and the notification channels
and deliveries that incidents.api.channels registers on the same router."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from incidents.api import channels, views

router = SimpleRouter()
router.register("incidents", views.IncidentViewSet, basename="incident")
channels.register(router)

urlpatterns = router.urls
