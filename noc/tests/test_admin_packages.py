"""The admin pages of Django, django-celery-beat and django-axes: admins only, writes audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib.auth.models import Group, Permission
from django.test import Client
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from accounts.models import AuditEvent

pytestmark = pytest.mark.django_db


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def package_rows() -> dict[str, object]:
    """One row behind each of the nine pages, by its admin path."""
    interval = IntervalSchedule.objects.create(every=17, period="seconds")
    now = timezone.now()
    attempt = dict(ip_address="203.0.113.9", user_agent="curl", path_info="/admin/login/")
    return {
        "auth/group": Group.objects.get_or_create(name="viewer")[0],
        "django_celery_beat/periodictask": PeriodicTask.objects.create(
            name="test: tick", task="noc.tick", interval=interval
        ),
        "django_celery_beat/intervalschedule": interval,
        "django_celery_beat/crontabschedule": CrontabSchedule.objects.create(minute="7"),
        "django_celery_beat/solarschedule": SolarSchedule.objects.create(
            event="sunrise", latitude=48.85, longitude=2.35
        ),
        "django_celery_beat/clockedschedule": ClockedSchedule.objects.create(clocked_time=now),
        "axes/accessattempt": AccessAttempt.objects.create(
            username="vera", failures_since_start=3, attempt_time=now, **attempt
        ),
        "axes/accesslog": AccessLog.objects.create(username="vera", attempt_time=now, **attempt),
        "axes/accessfailurelog": AccessFailureLog.objects.create(
            username="vera", attempt_time=now, **attempt
        ),
    }


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_the_packages_pages_are_refused_to_viewers_and_operators(role, make_user):
    client = login(make_user(role))
    rows = package_rows()
    for path, row in rows.items():
        for url in (f"/admin/{path}/", f"/admin/{path}/{row.pk}/change/", f"/admin/{path}/add/"):
            response = client.get(url)
            assert response.status_code == 403, url
            assert b"203.0.113.9" not in response.content
        deleted = client.post(f"/admin/{path}/{row.pk}/delete/", {"post": "yes"})
        assert deleted.status_code == 403, path
        assert type(row).objects.filter(pk=row.pk).exists()
    index = client.get("/admin/").content.decode()
    for path in rows:
        assert f"/admin/{path}/" not in index
    # Their own pages stay: the admin still opens for every role.
    assert "/admin/services/service/" in index


def test_admins_read_the_packages_pages(admin_user):
    client = login(admin_user)
    for path, row in package_rows().items():
        assert client.get(f"/admin/{path}/").status_code == 200, path
        assert client.get(f"/admin/{path}/{row.pk}/change/").status_code == 200, path
    assert b"203.0.113.9" in client.get("/admin/axes/accessattempt/").content


def test_adding_a_group_with_permissions_is_audited_in_one_event(admin_user):
    client = login(admin_user)
    perms = list(Permission.objects.filter(codename__in=["view_service", "view_incident"]))
    response = client.post(
        "/admin/auth/group/add/", {"name": "auditors", "permissions": [p.pk for p in perms]}
    )
    assert response.status_code == 302, response.content
    group = Group.objects.get(name="auditors")
    [event] = AuditEvent.objects.filter(target_type="auth.group", target_id=str(group.pk))
    assert (event.action, event.actor) == ("create", admin_user)
    assert event.changes["name"] == [None, "auditors"]
    assert event.changes["permissions"] == [None, sorted(p.pk for p in perms)]


def test_changing_a_groups_permissions_is_audited(admin_user):
    group = Group.objects.create(name="auditors")
    keep, add = Permission.objects.filter(codename__in=["view_service", "view_slo"])
    group.permissions.set([keep])
    response = login(admin_user).post(
        f"/admin/auth/group/{group.pk}/change/",
        {"name": "auditors", "permissions": [keep.pk, add.pk]},
    )
    assert response.status_code == 302, response.content
    event = AuditEvent.objects.get(action="update", target_id=str(group.pk))
    assert event.changes == {"permissions": [[keep.pk], sorted([keep.pk, add.pk])]}


def test_deleting_a_beat_schedule_is_audited(admin_user):
    interval = IntervalSchedule.objects.create(every=17, period="seconds")
    url = f"/admin/django_celery_beat/intervalschedule/{interval.pk}/delete/"
    assert login(admin_user).post(url, {"post": "yes"}).status_code == 302
    assert not IntervalSchedule.objects.filter(pk=interval.pk).exists()
    event = AuditEvent.objects.get(
        action="delete", target_type="django_celery_beat.intervalschedule"
    )
    assert event.changes["every"] == [17, None]
    assert event.actor == admin_user


def test_disabling_beat_tasks_from_the_list_is_audited_per_task(admin_user):
    interval = IntervalSchedule.objects.create(every=17, period="seconds")
    tasks = [
        PeriodicTask.objects.create(name=f"test: {n}", task="noc.tick", interval=interval)
        for n in ("a", "b")
    ]
    response = login(admin_user).post(
        "/admin/django_celery_beat/periodictask/",
        {"action": "disable_tasks", "_selected_action": [t.pk for t in tasks]},
    )
    assert response.status_code == 302, response.content
    assert not PeriodicTask.objects.filter(pk__in=[t.pk for t in tasks], enabled=True).exists()
    events = AuditEvent.objects.filter(verb="disable_tasks").order_by("target_id")
    assert [e.target_id for e in events] == sorted(str(t.pk) for t in tasks)
    assert all(e.action == "update" and e.changes["enabled"] == [True, False] for e in events)


def test_unlocking_a_user_by_deleting_attempts_is_audited(admin_user):
    client = login(admin_user)  # first: signing in cleans expired attempts up by itself
    now = timezone.now()
    row = dict(ip_address="203.0.113.9", user_agent="curl", path_info="/admin/login/")
    locked = AccessAttempt.objects.create(
        username="vera", failures_since_start=5, attempt_time=now, **row
    )
    stale = AccessAttempt.objects.create(username="oscar", failures_since_start=1, **row)
    # attempt_time is auto_now_add: age the row afterwards.
    AccessAttempt.objects.filter(pk=stale.pk).update(attempt_time=now - timedelta(days=2))
    deleted = client.post(f"/admin/axes/accessattempt/{locked.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    event = AuditEvent.objects.get(action="delete", target_id=str(locked.pk))
    assert event.changes["username"] == ["vera", None]
    # The clean-up action deletes expired attempts, selected or not: each one is audited.
    fresh = AccessAttempt.objects.create(
        username="alice", failures_since_start=1, attempt_time=now, **row
    )
    response = client.post(
        "/admin/axes/accessattempt/",
        {"action": "cleanup_expired_attempts", "_selected_action": [fresh.pk]},
    )
    assert response.status_code == 302, response.content
    assert list(AccessAttempt.objects.values_list("username", flat=True)) == ["alice"]
    cleaned = AuditEvent.objects.get(verb="cleanup_expired_attempts", action="delete")
    assert cleaned.target_id == str(stale.pk)
    assert AuditEvent.objects.get(verb="cleanup_expired_attempts", action="action").target_id == (
        str(fresh.pk)
    )
