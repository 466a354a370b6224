"""The site as a whole: its name, where "View site" goes, one mark for an empty value, and the
helpers every page draws values with."""
import re

import pytest
from django.contrib import admin
from django.urls import reverse

from exports.models import JobStatus
from tenants.admin.display import byte_size, code, html_table, mapping_table, records_table, short_hash
from tenants.services import apikey_create
from tests.admin.conftest import make_import, make_job

pytestmark = pytest.mark.django_db

EMPTY = "—"
DASHBOARD = reverse("admin:exports_dashboard")


def test_the_site_is_called_sparkexport_and_view_site_opens_the_dashboard(admin_client_a, client):
    html = admin_client_a.get(reverse("admin:index")).content.decode()
    assert '<div id="site-name"><a href="/admin/">sparkexport</a></div>' in html
    assert "<title>Supervisor admin | sparkexport</title>" in html
    assert f'<a href="{DASHBOARD}">View site</a>' in html
    assert admin_client_a.get(DASHBOARD).status_code == 200
    login = client.get(reverse("admin:login")).content.decode()
    assert "<title>Log in | sparkexport</title>" in login and "Django administration" not in login


def test_the_site_has_one_empty_mark():
    assert admin.site.empty_value_display == EMPTY
    assert all(model_admin.get_empty_value_display() == EMPTY for model_admin in admin.site._registry.values())


def readonly_values(html: str) -> dict[str, str]:
    pairs = re.findall(r"<label>([^<]+):</label>\s*<div class=\"readonly\">(.*?)</div>", html, re.S)
    return {label: value.strip() for label, value in pairs}


def test_empty_values_look_the_same_on_lists_and_detail_pages(admin_client_a, tenant):
    job = make_job(tenant, status=JobStatus.FAILED, source_system="", correlation_id=None)
    detail = readonly_values(admin_client_a.get(reverse("admin:exports_exportjob_change", args=[job.pk])).content.decode())
    for label in ("Source system", "Correlation id", "Download", "Size", "SHA-256", "Packaging time", "Errors", "Audit trail"):
        assert detail[label] == EMPTY, label
    assert "None" not in detail.values() and "" not in detail.values()

    row = admin_client_a.get(reverse("admin:exports_exportjob_changelist")).content.decode()
    assert re.search(rf'<td class="field-correlation">{EMPTY}</td>', row)
    assert re.search(rf'<td class="field-size">{EMPTY}</td>', row)

    imported = make_import(tenant, outputs={}, warnings=[])
    detail = readonly_values(admin_client_a.get(reverse("admin:exports_importjob_change", args=[imported.pk])).content.decode())
    for label in ("Services", "Versions", "Errors", "Warnings", "Audit trail"):
        assert detail[label] == EMPTY, label

    apikey_create(tenant=tenant, name="never-used")
    keys = admin_client_a.get(reverse("admin:tenants_apikey_changelist")).content.decode()
    assert f'<td class="field-last_used">{EMPTY}</td>' in keys and f'<td class="field-revoked">{EMPTY}</td>' in keys


def test_byte_sizes_and_hashes_in_words():
    assert byte_size(None) == EMPTY and byte_size(0) == "0\xa0bytes" and byte_size(3 * 1024 * 1024) == "3.0\xa0MB"
    assert short_hash("") == EMPTY
    assert short_hash("a" * 64) == f'<code title="{"a" * 64}">{"a" * 12}…</code>'
    assert short_hash("abc") == code("abc") == "<code>abc</code>" and code(None) == EMPTY


def test_tables_escape_what_clients_sent_and_leave_out_empty_columns():
    records = [{"code": "BAD", "message": "<script>x</script>"}, "a bare string", {"code": "ALSO", "details": None}]
    table = records_table(records, (("code", "code"), ("message", "message"), ("details", "details")))
    assert "<th>code</th><th>message</th></tr>" in table  # nobody has details: no column
    assert "<td>BAD</td><td>&lt;script&gt;x&lt;/script&gt;</td>" in table
    assert f"<td>a bare string</td><td>{EMPTY}</td>" in table and f"<td>ALSO</td><td>{EMPTY}</td>" in table
    assert records_table(None, (("code", "code"),)) == EMPTY and records_table([], (("code", "code"),)) == EMPTY
    assert html_table(("a",), []) == EMPTY

    inputs = mapping_table({"folders": ["pricing", "claims"], "services": [], "version_ids": ["v1"]})
    assert "<thead>" not in inputs
    assert "<tr><td>folders</td><td>pricing, claims</td></tr><tr><td>version ids</td><td>v1</td></tr>" in inputs
