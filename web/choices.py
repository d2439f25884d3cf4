"""Enumerations of the console and status page."""

from django.db import models


class ServicesShown(models.TextChoices):
    NOT_INTERNAL = "not_internal", "Every enabled service not tagged internal"
    GROUPS = "groups", "Only the enabled services in the groups below"
