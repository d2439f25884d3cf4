"""Writes of the accounts app: users, API keys, and the audit trail every app writes to."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.db import models, transaction
from django.utils import timezone

from accounts.audit import changed_secrets, diff, snapshot, target_of
from accounts.choices import AuditAction, Role
from accounts.models import ApiKey, AuditEvent, User
from noc.request_context import current


def audit_record(
    *,
    actor: User | None,
    action: str,
    instance: models.Model | None = None,
    target: tuple[str, str, str] | None = None,
    changes: dict[str, Any] | None = None,
    verb: str = "",
) -> AuditEvent:
    """Write one audit row; call it inside the transaction that makes the change."""
    ctx = current.get()
    target_type, target_id, target_label = target or target_of(instance)
    actor = actor if actor is not None and actor.is_authenticated else None
    return AuditEvent.objects.create(
        actor=actor,
        actor_label=actor.username if actor else "system",
        action=action,
        verb=verb,
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        changes=changes or {},
        ip=ctx.ip,
        user_agent=ctx.user_agent,
        request_id=ctx.request_id if ctx.request_id != "-" else "",
    )


def audit_create(*, actor: User | None, instance: models.Model) -> AuditEvent:
    return audit_record(
        actor=actor,
        action=AuditAction.CREATE,
        instance=instance,
        changes=diff({}, snapshot(instance)),
    )


def audit_update(
    *,
    actor: User | None,
    instance: models.Model,
    before: dict[str, Any],
    previous: models.Model | None = None,
) -> AuditEvent | None:
    """Audit what changed since the snapshot `before`. Secrets are masked in snapshots, so pass
    `previous` (the row as it was) for a changed secret to be recorded as [MASK, MASK]."""
    changes = diff(before, snapshot(instance))
    if previous is not None:
        changes.update(changed_secrets(previous, instance))
    if not changes:
        return None
    return audit_record(actor=actor, action=AuditAction.UPDATE, instance=instance, changes=changes)


def audit_delete(*, actor: User | None, instance: models.Model) -> AuditEvent:
    # Called before the delete, so the primary key is still there.
    return audit_record(
        actor=actor,
        action=AuditAction.DELETE,
        instance=instance,
        changes=diff(snapshot(instance), {}),
    )


def audit_purge(*, older_than_days: int | None = None) -> int:
    days = older_than_days if older_than_days is not None else settings.AUDIT_RETENTION_DAYS
    cutoff = timezone.now() - timedelta(days=days)
    deleted, _ = AuditEvent.objects.filter(time__lt=cutoff).delete()
    return deleted


# --- users ------------------------------------------------------------------------------------


def user_sync_role(*, user: User) -> None:
    """One role group, staff access to the admin for every role (what it shows depends on it)."""
    user.groups.set([Group.objects.get_or_create(name=user.role)[0]])
    if not user.is_staff or user.is_superuser != (user.role == Role.ADMIN):
        User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=user.role == Role.ADMIN)
        user.is_staff, user.is_superuser = True, user.role == Role.ADMIN


@transaction.atomic
def user_create(
    *,
    actor: User | None,
    username: str,
    email: str,
    role: str,
    password: str | None = None,
    **extra: Any,
) -> User:
    user = User(username=username, email=email, role=role, **extra)
    if password:
        validate_password(password, user)
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    user_sync_role(user=user)
    audit_create(actor=actor, instance=user)
    return user


@transaction.atomic
def user_update(
    *, actor: User | None, user: User, password: str | None = None, **fields: Any
) -> User:
    previous = User.objects.get(pk=user.pk)
    before = snapshot(previous)
    for name, value in fields.items():
        setattr(user, name, value)
    if password:
        validate_password(password, user)
        user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    user_sync_role(user=user)
    audit_update(actor=actor, instance=user, before=before, previous=previous)
    return user


def user_audit_password_change(*, actor: User | None, user: User, previous: User) -> None:
    """Audit a password set outside user_update (the admin's password form): {"password":
    [MASK, MASK]} when the stored hash changed. Call it in the transaction that saved it."""
    audit_update(actor=actor, instance=user, before=snapshot(previous), previous=previous)


# --- API keys ---------------------------------------------------------------------------------


@transaction.atomic
def api_key_create(
    *, actor: User | None, user: User, name: str, expires_in_days: int | None = None
) -> tuple[ApiKey, str]:
    """Return the key row and the full key, which is never retrievable again."""
    prefix, key = ApiKey.generate()
    expires_at = timezone.now() + timedelta(days=expires_in_days) if expires_in_days else None
    api_key = ApiKey.objects.create(
        user=user, name=name, prefix=prefix, hashed_key=ApiKey.hash(key), expires_at=expires_at
    )
    audit_create(actor=actor, instance=api_key)
    return api_key, key


@transaction.atomic
def api_key_revoke(*, actor: User | None, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        before = snapshot(api_key)
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
        audit_update(actor=actor, instance=api_key, before=before)
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    """Record use, at most once a minute per key so authentication is not a write per request."""
    now = timezone.now()
    threshold = now - settings.API_KEY_LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at < threshold:
        ApiKey.objects.filter(pk=api_key.pk).filter(
            models.Q(last_used_at__isnull=True) | models.Q(last_used_at__lt=threshold)
        ).update(last_used_at=now)
        api_key.last_used_at = now
