import django_filters

from accounts.choices import AuditAction, Role
from accounts.models import AuditEvent, User
from noc.api.dates import IsoDateTimeFilter
from noc.api.filters import FilterSet


class UserFilter(FilterSet):
    role = django_filters.ChoiceFilter(choices=Role.choices)

    class Meta:
        model = User
        fields = ["role", "is_active"]


class AuditEventFilter(FilterSet):
    action = django_filters.ChoiceFilter(choices=AuditAction.choices)
    since = IsoDateTimeFilter(field_name="time", lookup_expr="gte")
    until = IsoDateTimeFilter(field_name="time", lookup_expr="lt")

    class Meta:
        model = AuditEvent
        fields = ["actor", "action", "target_type", "target_id", "request_id"]
