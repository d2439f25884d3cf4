"""The status page's settings (one row) and its groups of services: what the public sees and
how it is arranged. Edited by admins in the admin, through web.actions (audited)."""

from __future__ import annotations

from django.core.validators import MaxValueValidator, RegexValidator
from django.db import models

from services.models import Service
from web.choices import ServicesShown

HEX_COLOR = RegexValidator(r"^#[0-9a-fA-F]{6}$", "A colour as #rrggbb.")
LOGO_URL = RegexValidator(
    r"^(/[^/]|https?://)", "A path on this site (/static/…) or an http(s) URL."
)


class StatusPage(models.Model):
    """The public status page's settings. One row (pk 1); without it the defaults apply."""

    enabled = models.BooleanField(default=True, help_text="Off: /status/ and its feed are 404.")
    title = models.CharField(max_length=100, default="Service status")
    introduction = models.TextField(
        max_length=2000, blank=True, help_text="Shown under the title (plain text)."
    )
    logo_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[LOGO_URL],
        help_text="Shown in the header: a path on this site or an http(s) URL that visitors "
        "can reach (keep it on your network if the page must work without internet).",
    )
    accent_color = models.CharField(
        max_length=7, default="#1d232a", validators=[HEX_COLOR], help_text="Header colour."
    )
    services_shown = models.CharField(
        max_length=16, choices=ServicesShown.choices, default=ServicesShown.NOT_INTERNAL
    )
    show_response_times = models.BooleanField(
        default=False, help_text="Show each service's average response time over 24 hours."
    )
    announce_maintenance_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(90)],
        help_text="Maintenance windows starting within this many days are announced (0: none).",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "status page"
        verbose_name_plural = "status page"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="statuspage_one_row")]

    def __str__(self) -> str:
        return self.title

    @classmethod
    def current(cls) -> StatusPage:
        """The settings, or the defaults (unsaved) before an admin first saves them."""
        return cls.objects.filter(pk=1).first() or cls(pk=1)


class StatusGroup(models.Model):
    """Services shown together under a heading, in `position` order."""

    name = models.CharField(max_length=100)
    position = models.PositiveSmallIntegerField(default=0)
    services = models.ManyToManyField(Service, blank=True, related_name="+")

    class Meta:
        ordering = ["position", "name", "id"]
        verbose_name = "status page group"

    def __str__(self) -> str:
        return self.name
