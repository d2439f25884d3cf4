"""URL path converters of the project."""

from __future__ import annotations

from uuid import UUID


class AnyCaseUUIDConverter:
    """A hyphenated UUID in any letter case (RFC 9562: UUIDs are case-insensitive on input);
    Django's `uuid` converter matches lowercase only, so an uppercase ping URL was a 404.
    URLs are reversed in lowercase, the canonical form."""

    regex = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

    def to_python(self, value: str) -> UUID:
        return UUID(value)

    def to_url(self, value: UUID | str) -> str:
        return str(value).lower()
