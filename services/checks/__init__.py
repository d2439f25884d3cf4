"""Check engines: run HTTP, TCP, DNS and TLS checks concurrently on one event loop.

The model layer builds `CheckSpec`s from services and stores the `Outcome`s; nothing in this
package touches Django.
"""

from __future__ import annotations

from services.checks.assertions import validate_json_path
from services.checks.context import CheckContext
from services.checks.engine import run_batch, run_batch_sync, run_one
from services.checks.guard import AddressRefused, refusal_reason, validate_url_target
from services.checks.spec import Assertions, CheckSpec, Outcome

__all__ = [
    "AddressRefused",
    "Assertions",
    "CheckContext",
    "CheckSpec",
    "Outcome",
    "refusal_reason",
    "run_batch",
    "run_batch_sync",
    "run_one",
    "validate_json_path",
    "validate_url_target",
]
