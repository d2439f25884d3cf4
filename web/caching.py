"""The console's cache reads: a page must stay up while Redis is down, so a cache error costs
a computation, never the page."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.cache import cache

logger = logging.getLogger(__name__)

T = TypeVar("T")


def cached(key: str, seconds: int, build: Callable[[], T], *, what: str = "page") -> T:
    """The cache's value of `key`, or `build()` kept there `seconds` when absent. Without the
    cache (Redis away) it is built each time: the page is served, only slower."""
    try:
        value = cache.get(key)
    except Exception:
        logger.warning("%s: cache unavailable", what, exc_info=True)
        return build()
    if value is None:
        value = build()
        try:
            cache.set(key, value, seconds)
        except Exception:
            logger.warning("%s: cache unavailable", what, exc_info=True)
    return value
