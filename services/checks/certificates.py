"""Read a peer certificate's expiry from a TLS connection (HTTP and TLS checks)."""

from __future__ import annotations

import math
import ssl
from datetime import UTC, datetime

from cryptography import x509

__all__ = ["PeerCertificate", "peer_certificate"]


class PeerCertificate:
    """The few facts about a server certificate that a check reports."""

    def __init__(self, der: bytes, *, now: datetime | None = None) -> None:
        cert = x509.load_der_x509_certificate(der)
        self.not_after = cert.not_valid_after_utc
        self.subject = cert.subject.rfc4514_string()
        self.issuer = cert.issuer.rfc4514_string()
        self._now = now

    @property
    def days_left(self) -> int:
        """Whole days until expiry; negative once expired."""
        now = self._now or datetime.now(UTC)
        return math.floor((self.not_after - now).total_seconds() / 86400)


def peer_certificate(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerCertificate | None:
    """The peer's certificate, also when it was not verified (binary form is always given)."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    return PeerCertificate(der) if der else None
