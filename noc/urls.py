"""The site's routes: the console and status page (web), the admin, the API of every app,
health, pings and metrics. The one module of the project package that imports the apps."""

from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, register_converter
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.decorators import api_view, permission_classes
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.reverse import reverse

from noc import health
from noc.converters import AnyCaseUUIDConverter
from observability.api.logs import OtlpLogsView
from observability.api.metrics import OtlpMetricsView
from observability.api.traces import OtlpTracesView
from services import metrics, ping

register_converter(AnyCaseUUIDConverter, "uuid_any_case")

api_urlpatterns = [
    path("", include("accounts.api.urls")),
    path("", include("services.api.urls")),
    path("", include("incidents.api.urls")),
    path("", include("slos.api.urls")),
    path("", include("observability.api.urls")),
    path("", include("collectors.api.urls")),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]


def top_level_routes(patterns=None) -> dict[str, str]:
    """{name: route name} of every top-level API resource, read from the routes themselves so
    that an app's new endpoint appears without editing a list: each router's list route
    (`incident-list` → `incidents`) and each plain top-level path (`me/`)."""
    found: dict[str, str] = {}
    for entry in api_urlpatterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            found |= top_level_routes(entry.url_patterns)
        elif isinstance(entry, URLPattern) and entry.name:
            route = str(entry.pattern).lstrip("^").rstrip("$")
            segments = [s for s in route.split("/") if s]
            if len(segments) == 1 and "<" not in route and "(" not in route:
                found[segments[0]] = entry.name
    return found


@extend_schema(exclude=True)
@api_view(["GET"])
@permission_classes([AllowAny])
def api_root(request, format=None):
    """The NOC API: every top-level resource. Each is documented in /api/docs/."""
    return Response(
        {name: reverse(route, request=request) for name, route in top_level_routes().items()}
    )


urlpatterns = [
    path("", include("web.urls")),
    path("admin/", admin.site.urls),
    path("api/", api_root, name="api-root"),
    path("api/", include(api_urlpatterns)),
    path("api-auth/", include("rest_framework.urls")),
    path("health/live", health.live, name="health-live"),
    path("health/ready", health.ready, name="health-ready"),
    path("ping/<uuid_any_case:token>", ping.ping, name="ping"),
    path("ping/<uuid_any_case:token>/fail", ping.ping, {"outcome": "fail"}, name="ping-fail"),
    path("ping/<uuid_any_case:token>/start", ping.ping, {"outcome": "start"}, name="ping-start"),
    path("metrics", metrics.metrics, name="metrics"),
    path("v1/logs", OtlpLogsView.as_view(), name="otlp-logs"),
    path("v1/metrics", OtlpMetricsView.as_view(), name="otlp-metrics"),
    path("v1/traces", OtlpTracesView.as_view(), name="otlp-traces"),
]

# The API answers in its JSON error shape even where Django, not DRF, answers.
handler400 = "noc.api.errors.bad_request"
handler404 = "noc.api.errors.not_found"
handler500 = "noc.api.errors.server_error"
