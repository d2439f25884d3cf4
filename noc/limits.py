"""Maximum sizes of what people type: every free-text field has one, documented in the API
schema (maxLength) and the README, and checked by the API, the admin and the import commands.

Raising a maximum is a state-only migration (PostgreSQL `text` has no length); rows written
before a maximum existed are kept as they are and must be shortened at their next edit.
"""

from __future__ import annotations

from django.core.validators import MaxLengthValidator
from django.db import models

DESCRIPTION_MAX_CHARS = 2_000  # services, maintenance windows, SLOs
NOTES_MAX_CHARS = 10_000  # incident summary, root cause, resolution notes, notes, comments
PUBLIC_UPDATE_MAX_CHARS = 5_000  # an incident's update for the public (status page, feed)
CHECK_BODY_MAX_CHARS = 10_000  # the body an HTTP check sends
HEADERS_MAX_COUNT = 50  # headers of a check or a webhook
HEADER_NAME_MAX_CHARS = 256
HEADER_VALUE_MAX_CHARS = 8_192
JSON_EXPECTED_MAX_CHARS = 10_000  # an HTTP check's expected JSON value, as JSON text
TAGS_MAX_COUNT = 50  # tags of a service (each at most 50 characters)
EMAILS_MAX_COUNT = 50  # addresses of an email channel


def bounded_text(max_chars: int, **options) -> models.TextField:
    """A TextField whose maximum the API, the admin and `full_clean()` all enforce (Django's
    TextField only passes `max_length` to forms and serializers)."""
    return models.TextField(
        max_length=max_chars, validators=[MaxLengthValidator(max_chars)], **options
    )
