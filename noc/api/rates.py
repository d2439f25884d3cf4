"""Rate strings of the API's throttles ("600/minute"), parsed once for settings and throttles."""

from __future__ import annotations

PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
OFF = ("", "off", "none")


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "600/minute" -> (600, 60) requests per seconds; None, "" or "off" -> None (no limit).
    ValueError when malformed. The period is second, minute, hour or day (its first letter
    is enough, as in DRF)."""
    if rate is None or rate.strip().lower() in OFF:
        return None
    count, _, period = rate.strip().partition("/")
    seconds = PERIOD_SECONDS.get(period.strip()[:1].lower())
    if not count.strip().isdigit() or int(count) < 1 or seconds is None:
        raise ValueError(
            f"{rate!r} is not a rate: give requests per period (600/minute, 20/second) or off"
        )
    return int(count), seconds
