"""An outage is logged when it starts and when it ends, not on every failed attempt."""

from __future__ import annotations

import logging

from django.db import OperationalError

from noc.outages import Outage


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(caplog):
    outage = Outage("PostgreSQL, for tests", logging.getLogger("noc.tests.outage"))
    with caplog.at_level(logging.WARNING, logger="noc.tests.outage"):
        outage.ok()  # nothing to say while all is well
        for _ in range(5):
            outage.failed(OperationalError("connection refused\nIs the server running?"))
        outage.ok()
        outage.ok()
        outage.failed(OperationalError("connection refused"))
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        "PostgreSQL, for tests unavailable (OperationalError: connection refused); "
        "retrying, quietly until it is back"
    )
    assert messages[1].startswith("PostgreSQL, for tests back after ")
    assert len(messages) == 3
