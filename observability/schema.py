"""OpenAPI description of ingest-key authentication (drf-spectacular extension)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class IngestKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "observability.authentication.IngestKeyAuthentication"
    name = "ingestKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An application's ingest key: `Authorization: Bearer "
            "noci_<prefix>_<secret>`. It writes that application's data and reads nothing.",
        }
