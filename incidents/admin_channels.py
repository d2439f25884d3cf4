"""Admin of notification channels (admins only: they hold secrets) and of the delivery log
(read-only, operators and admins), imported by incidents/admin.py.

Channel writes go through incidents.delivery (validation, services routing and audit in one
transaction). The signing secret is never shown in a form: it is shown once in a message
when generated (on creation or by the "Rotate signing secret" action).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from accounts.choices import Role
from incidents import delivery
from incidents.choices import CHANNEL_EVENTS, DeliveryStatus
from incidents.models import (
    DeliveryAttempt,
    NotificationChannel,
    NotificationDelivery,
    new_secret,
)
from noc.api.permissions import has_role

DELIVERY_COLORS = {
    DeliveryStatus.PENDING: "#6e7781",
    DeliveryStatus.SENDING: "#0969da",
    DeliveryStatus.SENT: "#1a7f37",
    DeliveryStatus.RETRYING: "#bf8700",
    DeliveryStatus.FAILED: "#cf222e",
    DeliveryStatus.SUPPRESSED: "#6e7781",
}


class NotificationChannelForm(forms.ModelForm):
    events = forms.MultipleChoiceField(
        choices=[(e.value, e.label) for e in CHANNEL_EVENTS],
        widget=forms.CheckboxSelectMultiple,
        initial=[e.value for e in CHANNEL_EVENTS],
    )
    # A URL typed without a scheme is assumed https (Django 6's default, chosen now).
    url = forms.URLField(
        max_length=2000,
        required=False,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"size": 80}),
        help_text="The receiver's http(s) URL (webhook and Slack-compatible channels).",
    )

    class Meta:
        model = NotificationChannel
        fields = [
            "name", "kind", "enabled", "is_default", "services", "events", "min_severity",
            "email_to", "url", "headers",
        ]  # fmt: skip
        help_texts = {
            "email_to": "Comma-separated addresses (email channels).",
            "headers": 'Extra request headers, e.g. {"Authorization": "Bearer …"}.',
        }


@admin.register(NotificationChannel)
class NotificationChannelAdmin(admin.ModelAdmin):
    form = NotificationChannelForm
    list_display = [
        "name", "kind", "enabled", "is_default", "target", "min_severity", "event_list",
        "has_secret",
    ]  # fmt: skip
    list_filter = ["kind", "enabled", "is_default"]
    search_fields = ["name", "url"]
    filter_horizontal = ["services"]
    actions = ["send_test_notification", "rotate_secret"]

    # Viewers and operators hold view_* permissions on every model; channels carry secrets
    # and private URLs, so only admins see them (as in the API).
    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.ADMIN)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.ADMIN)

    # --- list columns

    @admin.display(description="target")
    def target(self, channel: NotificationChannel) -> str:
        return ", ".join(channel.email_to) if channel.email_to else channel.url

    @admin.display(description="events")
    def event_list(self, channel: NotificationChannel) -> str:
        return ", ".join(channel.events)

    @admin.display(description="signed", boolean=True)
    def has_secret(self, channel: NotificationChannel) -> bool:
        return bool(channel.secret)

    # --- writes through incidents.delivery

    def save_model(self, request: HttpRequest, obj, form: forms.ModelForm, change: bool) -> None:
        delivery.channel_save(
            actor=request.user, channel=obj, services=list(form.cleaned_data["services"])
        )
        if not change and obj.secret:
            self._show_secret(request, obj)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        # channel_save has set the services (and audited them); only formsets remain.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def delete_model(self, request: HttpRequest, obj: NotificationChannel) -> None:
        delivery.channel_delete(actor=request.user, channel=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset:
            delivery.channel_delete(actor=request.user, channel=channel)

    def _show_secret(self, request: HttpRequest, channel: NotificationChannel) -> None:
        self.message_user(
            request,
            f"{channel.name}: signing secret (shown once, store it now): {channel.secret}",
            messages.WARNING,
        )

    # --- actions

    @admin.action(description="Send test notification", permissions=["change"])
    def send_test_notification(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset.order_by("name"):
            sent = delivery.channel_send_test(channel=channel, actor=request.user)
            if sent.status == DeliveryStatus.SENT:
                self.message_user(request, f"{channel.name}: test sent.", messages.SUCCESS)
            else:
                self.message_user(
                    request, f"{channel.name}: test failed: {sent.last_error}", messages.ERROR
                )

    @admin.action(description="Rotate signing secret", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet) -> None:
        for channel in queryset.order_by("name"):
            channel.secret = new_secret()
            try:
                delivery.channel_save(actor=request.user, channel=channel)
            except ValidationError as invalid:
                self.message_user(request, f"{channel.name}: {invalid}", messages.ERROR)
            else:
                self._show_secret(request, channel)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = ["time", "ok", "response_code", "error", "duration_ms"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(admin.ModelAdmin):
    """The delivery log, written only by the sender: read-only here."""

    list_display = [
        "id", "channel", "incident", "event_kind", "status_badge", "attempts", "next_attempt_at",
        "sent_at", "last_error", "is_test", "created_at",
    ]  # fmt: skip
    list_filter = ["status", "is_test", "channel"]
    list_select_related = ["channel", "incident", "event"]
    search_fields = ["last_error", "channel__name", "incident__title"]
    date_hierarchy = "created_at"
    fields = [
        "channel", "incident", "event", "status", "attempts", "next_attempt_at", "sent_at",
        "last_error", "is_test", "notice", "created_at",
    ]  # fmt: skip
    readonly_fields = fields
    inlines = [DeliveryAttemptInline]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return has_role(request.user, Role.OPERATOR)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return has_role(request.user, Role.OPERATOR)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="event", ordering="event__kind")
    def event_kind(self, row: NotificationDelivery) -> str:
        return row.kind

    @admin.display(description="status", ordering="status")
    def status_badge(self, row: NotificationDelivery) -> str:
        color = DELIVERY_COLORS.get(row.status, "#6e7781")
        return format_html('<b style="color:{}">{}</b>', color, row.get_status_display())
