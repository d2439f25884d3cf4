"""The beat schedule is synced from the code's entries into django-celery-beat's tables."""

from __future__ import annotations

import pytest
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from noc.beat import ENTRIES, sync_schedule

pytestmark = pytest.mark.django_db


def test_a_duplicate_interval_added_in_the_admin_does_not_break_the_sync():
    sync_schedule()
    used = PeriodicTask.objects.filter(name__in=list(ENTRIES)).first().interval
    # (every, period) is not unique: the admin lets anyone add the same interval again.
    IntervalSchedule.objects.create(every=used.every, period=used.period)

    sync_schedule()

    assert PeriodicTask.objects.filter(name__in=list(ENTRIES)).count() == len(ENTRIES)
    # Tasks stay on the first of the two, and nothing points at the duplicate.
    assert PeriodicTask.objects.filter(interval=used).exists()
    assert not PeriodicTask.objects.filter(interval__every=used.every).exclude(interval=used)
