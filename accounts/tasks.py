from celery import shared_task

from accounts import actions
from noc.beat import BeatEntry, register


@shared_task(name="accounts.purge_audit_events", soft_time_limit=300, time_limit=360)
def purge_audit_events() -> int:
    """Delete audit events older than AUDIT_RETENTION_DAYS."""
    return actions.audit_purge()


register(BeatEntry("accounts: purge old audit events", "accounts.purge_audit_events", 86400))
