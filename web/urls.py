"""Routes of the console's pages and the public status page (included at the site's root)."""

from __future__ import annotations

from django.urls import path

from web.views import assets, dashboard, incidents, services, slos, status

app_name = "web"

urlpatterns = [
    path("", dashboard.home, name="home"),
    path("services/<slug:service_id>/", services.service_detail, name="service"),
    path(
        "services/<slug:service_id>/check-now/", services.service_check_now,
        name="service-check-now",
    ),
    path("services/<slug:service_id>/pause/", services.service_pause, name="service-pause"),
    path("services/<slug:service_id>/resume/", services.service_resume, name="service-resume"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident"),
    path(
        "incidents/<int:pk>/acknowledge/", incidents.incident_acknowledge,
        name="incident-acknowledge",
    ),
    path("incidents/<int:pk>/assign/", incidents.incident_assign, name="incident-assign"),
    path("incidents/<int:pk>/status/", incidents.incident_change_status, name="incident-status"),
    path("incidents/<int:pk>/comment/", incidents.incident_comment, name="incident-comment"),
    path("incidents/<int:pk>/resolve/", incidents.incident_resolve, name="incident-resolve"),
    path("incidents/<int:pk>/close/", incidents.incident_close, name="incident-close"),
    path("incidents/<int:pk>/publish/", incidents.incident_publish, name="incident-publish"),
    path("slos/<slug:slo_id>/", slos.slo_detail, name="slo"),
    path("status/", status.status_page, name="status-page"),
    path("status/feed.json", status.status_feed, name="status-feed"),
    path("status/services/<slug:token>/", status.status_service, name="status-service"),
    path("status/badge/<slug:service_id>.svg", status.status_badge, name="badge-status"),
    path(
        "status/badge/<slug:service_id>/uptime.svg", status.uptime_badge, name="badge-uptime"
    ),
    path("favicon.ico", assets.favicon, name="favicon"),
]  # fmt: skip
