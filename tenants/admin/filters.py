"""List filters shared by the admin's lists."""
from django.contrib import admin
from django.db.models import Q


class ConditionFilter(admin.SimpleListFilter):
    """Rows by one of a few named conditions: `conditions` maps each URL value to (label, Q)."""

    conditions: dict[str, tuple[str, Q]] = {}

    def lookups(self, request, model_admin):
        return [(value, label) for value, (label, _) in self.conditions.items()]

    def queryset(self, request, queryset):
        if self.value() in self.conditions:
            return queryset.filter(self.conditions[self.value()][1])
        return queryset
