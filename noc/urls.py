from django.contrib import admin
from django.urls import include, path, register_converter
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from noc import health, views
from noc.converters import AnyCaseUUIDConverter
from services import metrics, ping

register_converter(AnyCaseUUIDConverter, "uuid_any_case")

API_ROOT_LINKS = [
    "me",
    "user-list",
    "api-key-list",
    "audit-event-list",
    "service-list",
    "maintenance-window-list",
    "incident-list",
    "slo-list",
    "application-list",
    "ingest-key-list",
]


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    """The NOC API. Every endpoint below is documented in /api/docs/."""
    links = {name.removesuffix("-list"): reverse(name, request=request) for name in API_ROOT_LINKS}
    links["schema"] = reverse("schema", request=request)
    links["docs"] = reverse("swagger-ui", request=request)
    return Response(links)


api_urlpatterns = [
    path("", api_root, name="api-root"),
    path("", include("accounts.api.urls")),
    path("", include("services.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include("slos.api.urls")),
    path("", include("observability.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("status/", views.status_page, name="status-page"),
    path("admin/", admin.site.urls),
    path("api/", include(api_urlpatterns)),
    path("api-auth/", include("rest_framework.urls")),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("ping/<uuid_any_case:token>", ping.ping, name="ping"),
    path("ping/<uuid_any_case:token>/fail", ping.ping, {"outcome": "fail"}, name="ping-fail"),
    path("ping/<uuid_any_case:token>/start", ping.ping, {"outcome": "start"}, name="ping-start"),
    path("metrics", metrics.metrics, name="metrics"),
]

# The API answers in its JSON error shape even where Django, not DRF, answers.
handler400 = "noc.api.errors.bad_request"
handler404 = "noc.api.errors.not_found"
handler500 = "noc.api.errors.server_error"
