"""`{% job_date_hierarchy cl %}`: Django's date hierarchy for the job lists, without reading every job."""
from django import template
from django.contrib.admin.templatetags.admin_list import date_hierarchy
from django.contrib.admin.templatetags.base import InclusionAdminNode

from exports.admin.history import RangeDateHierarchy

register = template.Library()


def _job_date_hierarchy(changelist):
    return date_hierarchy(RangeDateHierarchy(changelist))


@register.tag(name="job_date_hierarchy")
def job_date_hierarchy_tag(parser, token):
    return InclusionAdminNode(
        parser, token, func=_job_date_hierarchy, template_name="date_hierarchy.html", takes_context=False
    )
