"""Routes of the services API, included under /api/."""

from rest_framework.routers import SimpleRouter

from services.api import views

router = SimpleRouter()
router.register("services", views.ServiceViewSet, basename="service")
router.register(
    "maintenance-windows", views.MaintenanceWindowViewSet, basename="maintenance-window"
)

urlpatterns = router.urls
