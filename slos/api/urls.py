"""Routes of the slos API, included under /api/."""

from rest_framework.routers import SimpleRouter

from slos.api import views

router = SimpleRouter()
router.register("slos", views.SLOViewSet, basename="slo")

urlpatterns = router.urls
