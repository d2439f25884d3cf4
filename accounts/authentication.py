"""`Authorization: Bearer <key>` authentication for machines."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.actions import api_key_touch
from accounts.models import API_KEY_PREFIX, ApiKey
from noc.request_context import bind_user


class ApiKeyAuthentication(BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = get_authorization_header(request)
        if not header:
            return None
        try:
            parts = header.decode("ascii").split()
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Authorization header must be ASCII.") from exc
        if not parts:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'."
            )
        if parts[0].lower() != self.keyword.lower():
            if parts[0].lower() in {"basic", "token"}:
                raise exceptions.AuthenticationFailed(
                    f"Authorization scheme {parts[0]!r} is not supported; use 'Bearer <api key>'."
                )
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>'."
            )
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header; expected 'Bearer <api key>' with one key."
            )
        return self.authenticate_key(parts[1])

    def authenticate_key(self, key: str):
        if not key.startswith(f"{API_KEY_PREFIX}_"):
            raise exceptions.AuthenticationFailed("That is not a NOC API key.")
        api_key = ApiKey.objects.select_related("user").filter(hashed_key=ApiKey.hash(key)).first()
        if api_key is None:
            raise exceptions.AuthenticationFailed("Unknown API key.")
        if api_key.revoked_at is not None:
            raise exceptions.AuthenticationFailed("This API key has been revoked.")
        if api_key.is_expired:
            raise exceptions.AuthenticationFailed("This API key has expired.")
        if not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("The user of this API key is inactive.")
        api_key_touch(api_key=api_key)
        bind_user(api_key.user_id)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
