"""Times kept as ISO 8601 text in an event's evidence are printed as the pages print times."""

from __future__ import annotations

import pytest

from web.templatetags.console import iso_time


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("2026-12-05T06:01:40.588787+00:00", "2026-12-05 06:01:40 UTC"),
        ("2026-12-05T07:01:40+01:00", "2026-12-05 06:01:40 UTC"),
        ("2026-12-05T06:01:40", "2026-12-05 06:01:40 UTC"),
        ("not a time", "not a time"),
        ("2026-13-45T99:00:00", "2026-13-45T99:00:00"),
        ("", "—"),
        (None, "—"),
    ],
)
def test_an_evidence_time_reads_like_the_other_times(stored, shown):
    assert iso_time(stored) == shown
