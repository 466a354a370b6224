"""Run by tests/security/test_large_requests.py in a process whose DATABASE_URL is SQLite (the
`make run` database): resolves 1,000 references each way the API does, and prints what each answered."""
import json
import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sparkexport.settings")
django.setup()

from django.test import Client  # noqa: E402

from exports.imports.plan import _existing_services, parse_mappings  # noqa: E402
from tenants.models import Folder, Service  # noqa: E402
from tenants.services import apikey_create, tenant_create  # noqa: E402
from tenants.xcall_resolution import CatalogIndex  # noqa: E402

COUNT = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def main() -> dict:
    tenant = tenant_create(slug="sqlite-big")
    folder = Folder.objects.create(tenant=tenant, name="claims")
    Service.objects.bulk_create(Service(folder=folder, name=f"s{n}") for n in range(0, COUNT, 2))
    key = apikey_create(tenant=tenant, name="big")[1]
    client = Client(HTTP_X_SYNTHETIC_KEY=key, HTTP_X_TENANT_NAME=tenant.slug)
    names = [f"claims/s{n}" for n in range(COUNT)]
    export = client.post(f"/{tenant.slug}/api/v4/export", {"inputs": {"services": names}}, content_type="application/json")
    mappings = parse_mappings([{"service_uri_source": name} for name in names])
    return {
        "export_status": export.status_code,
        "export_code": export.json().get("code"),
        "existing_services": len(_existing_services(tenant, mappings)),
        "catalog_index_services": len(CatalogIndex.of_tenant(tenant, names).by_name),
        "vendor": django.db.connection.vendor,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
