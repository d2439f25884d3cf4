"""Deleting the keys of one cache prefix (an installation, a test run) without emptying the
Redis database it shares: Django's cache.clear() is FLUSHDB, which would take every other
user's keys with it."""

from __future__ import annotations

import re

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache

GLOB_SPECIALS = re.compile(r"([*?\[\]\\])")


def delete_prefixed(alias: str = "default") -> int:
    """Delete every key of the cache's KEY_PREFIX; returns how many. A cache that is not Redis
    (a per-process one a test configured) is simply cleared."""
    cache = caches[alias]
    if not isinstance(cache, RedisCache):
        cache.clear()
        return 0
    client = cache._cache.get_client(write=True)
    pattern = GLOB_SPECIALS.sub(r"\\\1", cache.key_prefix) + ":*"
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) == 1000:
            deleted += client.delete(*batch)
            batch = []
    if batch:
        deleted += client.delete(*batch)
    return deleted
