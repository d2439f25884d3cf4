"""The suite deletes only its own cache keys: it may run against a Redis that others use."""

from __future__ import annotations

import uuid

from django.core.cache import caches

from noc.cachekeys import delete_prefixed


def raw_client():
    return caches["default"]._cache.get_client(write=True)


def test_this_run_writes_its_cache_keys_under_a_prefix_of_its_own():
    assert caches["default"].key_prefix.endswith(f"-test-{__import__('os').getpid()}")


def test_deleting_this_runs_keys_leaves_everybody_elses():
    cache, client = caches["default"], raw_client()
    foreign = f"someone-else-{uuid.uuid4().hex}:1:kept"
    client.set(foreign, b"1", ex=60)
    cache.set("ours", 1)
    try:
        assert delete_prefixed() == 1
        assert cache.get("ours") is None
        assert client.get(foreign) == b"1"
    finally:
        client.delete(foreign)


def test_a_prefix_with_glob_characters_matches_only_itself(settings):
    location = settings.CACHES["default"]["LOCATION"]
    tag = uuid.uuid4().hex[:8]
    settings.CACHES = settings.CACHES | {
        "odd": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": location,
            "KEY_PREFIX": f"t{tag}[a]*",
        }
    }
    client = raw_client()
    lookalike = f"t{tag}a-anything:1:kept"  # what the unescaped glob would also match
    client.set(lookalike, b"1", ex=60)
    caches["odd"].set("ours", 1)
    try:
        assert delete_prefixed("odd") == 1
        assert client.get(lookalike) == b"1"
    finally:
        client.delete(lookalike)
