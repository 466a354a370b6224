"""The job lists over a long history (docs/scale.md): no page view reads every job.

Counts stop at a bound (tenants/admin/paginators.py); the creator filter's choices come from a
loose index scan (exports/selectors.py `job_creators`); the tenant filter lists the user's
tenants; the date hierarchy's years, months and days span the list's first and last dates (two
index reads) where Django's runs a SELECT DISTINCT over every row.
"""
from datetime import date

from django.contrib import admin
from django.db.models import Max, Min
from django.utils import timezone

from exports.selectors import job_creators
from tenants.admin_scope import supervised_tenant_ids, supervised_tenants


class CreatorFilter(admin.SimpleListFilter):
    """Jobs by `created_by`: an API key's name, a user or a command."""

    title = "created by"
    parameter_name = "created_by__exact"

    def lookups(self, request, model_admin):
        return [(name, name) for name in job_creators(model_admin.model, supervised_tenant_ids(request))]

    def queryset(self, request, queryset):
        return queryset.filter(created_by=self.value()) if self.value() else queryset


class TenantFilter(admin.SimpleListFilter):
    """Jobs of one of the tenants the user supervises (Django's "related only" filter would read
    every job to find which tenants have some)."""

    title = "tenant"
    parameter_name = "tenant__id__exact"

    def lookups(self, request, model_admin):
        return [(str(pk), slug) for pk, slug in supervised_tenants(request).values_list("pk", "slug")]

    def queryset(self, request, queryset):
        return queryset.filter(tenant_id=self.value()) if self.value() else queryset


def periods(first, last, kind: str) -> list[date]:
    """Each year, month or day (`kind`) from `first` to `last` (aware datetimes), local time."""
    if first is None or last is None:
        return []
    start, end = timezone.localtime(first).date(), timezone.localtime(last).date()
    if kind == "year":
        return [date(year, 1, 1) for year in range(start.year, end.year + 1)]
    if kind == "month":
        months = range(start.year * 12 + start.month - 1, end.year * 12 + end.month)
        return [date(month // 12, month % 12 + 1, 1) for month in months]
    return [date.fromordinal(day) for day in range(start.toordinal(), end.toordinal() + 1)]


class _DateRange:
    """What Django's date_hierarchy asks of a list's queryset, answered from its MIN and MAX."""

    def __init__(self, queryset, field_name: str):
        self._queryset = queryset
        self._field_name = field_name
        self._bounds = None

    def aggregate(self, **aggregates):
        if self._bounds is None:
            self._bounds = self._queryset.aggregate(first=Min(self._field_name), last=Max(self._field_name))
        return self._bounds

    def datetimes(self, field_name, kind):
        bounds = self.aggregate()
        return periods(bounds["first"], bounds["last"], kind)


class RangeDateHierarchy:
    """A ChangeList as Django's date_hierarchy tag reads it, with periods from MIN and MAX: a
    period without jobs may be listed (it shows an empty list), none with jobs is missed."""

    def __init__(self, changelist):
        self._changelist = changelist
        self.queryset = _DateRange(changelist.queryset, changelist.date_hierarchy)

    def __getattr__(self, name):
        return getattr(self._changelist, name)
