"""Bearer tokens of collectors: stored Fernet-encrypted under a key derived from SECRET_KEY, or
as the name of an environment variable; read back only by the worker that sends them."""

from __future__ import annotations

import base64
import hashlib
import os

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

from collectors.validation import ENV_NAME, TOKEN_ENV_PREFIX


def _fernet() -> Fernet:
    digest = hashlib.sha256(f"collectors-token:{settings.SECRET_KEY}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(token: str) -> str:
    return _fernet().encrypt(token.encode()).decode() if token else ""


class TokenUnavailable(Exception):
    """The collector's token cannot be read (SECRET_KEY changed, variable unset)."""


def bearer_token(*, encrypted: str, env_name: str) -> str:
    """The token to send ('' for none)."""
    if env_name:
        if not ENV_NAME.fullmatch(env_name):  # saved before the rule, or written around it
            raise TokenUnavailable(f"{env_name} is not a {TOKEN_ENV_PREFIX}* variable")
        value = os.environ.get(env_name, "")
        if not value:
            raise TokenUnavailable(f"environment variable {env_name} is not set")
        return value
    if not encrypted:
        return ""
    try:
        return _fernet().decrypt(encrypted.encode()).decode()
    except InvalidToken as exc:
        raise TokenUnavailable(
            "the stored token cannot be decrypted (SECRET_KEY changed?)"
        ) from exc
