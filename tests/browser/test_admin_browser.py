"""The supervisor admin in a real browser: headless Debian Chromium driven by Playwright, on a
1366 × 768 screen (a supervisor's laptop)."""
import os
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect, sync_playwright

from exports.models import ExportJob, JobStatus
from tenants.models import ApiKey, OAuthClient
from tenants.services import apikey_create, apikey_revoke, member_add, oauth_client_create
from tests.admin.conftest import make_import, make_job, store_package
from tests.factories import ServiceVersionFactory, TenantFactory

pytestmark = pytest.mark.browser

# Playwright's sync API runs an event loop in this thread; the ORM calls here are still sync.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
PASSWORD = "browser-test-password"
SCREEN = {"width": 1366, "height": 768}

# What is wider than its box: the page itself, a changelist's results container, or a table
# on a detail page or the dashboard. Each as "what: scrollWidth > clientWidth".
OVERFLOWS = """() => {
  const found = [];
  const check = (what, box) => {
    if (box.scrollWidth > box.clientWidth) found.push(`${what}: ${box.scrollWidth} > ${box.clientWidth}`);
  };
  check("page", document.documentElement);
  document.querySelectorAll(".results").forEach((box) => check("changelist .results", box));
  document.querySelectorAll("#content-main table").forEach((table) => {
    if (!table.closest(".results")) check(`table in ${table.parentElement.className || table.parentElement.tagName}`, table.parentElement);
  });
  return found;
}"""


@pytest.fixture
def page():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=SCREEN)
        yield context.new_page()
        browser.close()


@pytest.fixture
def supervised_tenant():
    """acme with a history of jobs (one still running), and globex, which must stay unseen."""
    acme = TenantFactory(slug="acme", export_api_job_limit=2)
    member_add(tenant=acme, username="sue@acme.test", supervisor=True, password=PASSWORD)
    version = ServiceVersionFactory(
        service__folder__tenant=acme, service__folder__name="pricing", service__name="quote", version="1.2.0"
    )
    for days, status in [(0, JobStatus.CLOSED), (1, JobStatus.CLOSED), (1, JobStatus.FAILED), (2, JobStatus.CLOSED),
                         (3, JobStatus.CANCELLED), (5, JobStatus.CLOSED), (5, JobStatus.CLOSED_BY_TIMEOUT), (9, JobStatus.CLOSED)]:
        job = make_job(acme, status=status, created_ago=timedelta(days=days, minutes=20), versions=[version],
                       source_system="ci", correlation_id=f"release-{days}")
        if status == JobStatus.CLOSED:
            store_package(job)
    running = make_job(acme, status=JobStatus.IN_PROGRESS, created_ago=timedelta(minutes=3), versions=[version],
                       source_system="nightly", correlation_id="nightly-2026")
    make_job(TenantFactory(slug="globex"), status=JobStatus.IN_PROGRESS, correlation_id="globex-secret")
    return running


def log_in(page, live_server) -> None:
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "sue@acme.test")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#user-tools")).to_contain_text("sue@acme.test")


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_supervisor_finds_cancels_a_running_job_and_reads_the_dashboard(live_server, page, supervised_tenant):
    running = supervised_tenant

    log_in(page, live_server)
    expect(page.locator("#supervisor-dashboard-link")).to_be_visible()
    expect(page.locator("#content-main")).to_contain_text("Export jobs")
    expect(page.locator("#site-name")).to_have_text("sparkexport")
    assert page.title() == "Supervisor admin | sparkexport"
    shot(page, "01-admin-index-supervisor")

    page.locator("#content-main").get_by_role("link", name="Export jobs").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(9)
    expect(page.locator("#result_list")).not_to_contain_text("globex")
    shot(page, "02-job-history")

    page.locator("#changelist-filter").get_by_role("link", name="In Progress").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("nightly-2026")
    shot(page, "03-job-history-filtered-in-progress")

    page.locator("#result_list tbody tr th a").first.click()
    expect(page.locator(".field-status_badge")).to_contain_text("in progress")
    expect(page.locator(".field-versions_display")).to_contain_text("quote")
    shot(page, "04-job-detail-in-progress")

    page.click("#job-cancel")
    expect(page.locator(".messagelist")).to_contain_text(f"Job {running.pk} cancelled.")
    expect(page.locator(".field-status_badge")).to_contain_text("cancelled")
    expect(page.locator("#job-cancel")).to_have_count(0)
    assert ExportJob.objects.get(pk=running.pk).status == JobStatus.CANCELLED
    shot(page, "05-job-detail-cancelled")

    page.get_by_role("link", name="View site").click()  # the supervisor dashboard
    panel = page.locator("#tenant-acme")
    expect(panel).to_contain_text("0 / 2")  # the running job was cancelled
    expect(panel.locator("svg.daily-chart rect")).not_to_have_count(0)
    expect(panel.locator("svg.daily-chart")).to_contain_text("closed by timeout")
    expect(page.locator("#content-main")).not_to_contain_text("globex")
    expect(page.locator("#workers")).to_contain_text(re.compile(r"Workers"))
    shot(page, "06-supervisor-dashboard")


@pytest.fixture
def busy_tenant(supervised_tenant):
    """acme as a supervisor finds it after some months: long names and ids everywhere, imports
    with outcomes, keys used and revoked, an OAuth client, members and a catalog in two folders."""
    acme = supervised_tenant.tenant
    for index in range(3):
        ServiceVersionFactory(service__folder__tenant=acme, service__folder__name="underwriting-rules",
                              service__name="home-cover-premium-calculator", version=f"2.{index}.0", compiled=index != 1)
    pipeline = "release-pipeline@acme-insurance.example"
    member_add(tenant=acme, username=pipeline)
    member_add(tenant=acme, username="second-line-supervisor@acme-insurance.example", supervisor=True)
    oauth_client_create(tenant=acme, name="deployment-pipeline-production-eu-west-1", username=pipeline)
    make_job(acme, created_by="deployment-pipeline-production-eu-west-1", correlation_id=str(uuid.uuid4()),
             source_system="github-actions/acme-insurance/spark-services")
    used, _ = apikey_create(tenant=acme, name="continuous-delivery-pipeline-key", supervisor=True)
    ApiKey.objects.filter(pk=used.pk).update(last_used_at=timezone.now())
    apikey_revoke(api_key=apikey_create(tenant=acme, name="laptop-key-of-a-former-colleague")[0])
    services = [
        {"service_uri_source": f"underwriting-rules/home-cover-premium-calculator-{n}",
         "service_uri_destination": f"underwriting-rules-copy/home-cover-premium-calculator-{n}"}
        for n in range(3)
    ]
    versions = [
        {**service, "service_uri_source": f"{service['service_uri_source']}[2.{n}.0]",
         "service_uri_destination": f"{service['service_uri_destination']}[2.{n}.0]",
         "version_id_destination": str(uuid.uuid4()), "status": "added"}
        for n, service in enumerate(services)
    ]
    outputs = {"services": [{**s, "service_id_destination": str(uuid.uuid4()), "status": "added"} for s in services],
               "service_versions": versions}
    imported = make_import(acme, created_by=pipeline, correlation_id=str(uuid.uuid4()), services_modify=services,
                           services_existing="add_version", outputs=outputs, source_system="github-actions")
    make_import(acme, dry_run=True, created_by=pipeline, outputs=outputs, services_modify=services)
    make_import(acme, status=JobStatus.FAILED, outputs={}, services_modify=services,
                errors=[{"code": "SERVICE_EXISTS", "message": "underwriting-rules-copy/home-cover-premium-calculator-0 "
                                                             "exists already; choose services_existing replace."}])
    return imported


@pytest.mark.django_db(transaction=True)
def test_every_supervisor_page_fits_a_1366_by_768_screen(live_server, page, busy_tenant):
    export_job = ExportJob.objects.filter(tenant=busy_tenant.tenant).exclude(package="").first()
    api_key = ApiKey.objects.get(name="continuous-delivery-pipeline-key")
    client = OAuthClient.objects.get()
    admin = f"{live_server.url}/admin"
    pages = [
        ("index", f"{admin}/", "#supervisor-dashboard-link"),
        ("export-jobs", f"{admin}/exports/exportjob/", "#result_list"),
        ("export-job", f"{admin}/exports/exportjob/{export_job.pk}/change/", ".field-versions_display table"),
        ("import-jobs", f"{admin}/exports/importjob/", "#result_list"),
        ("import-job", f"{admin}/exports/importjob/{busy_tenant.pk}/change/", ".field-versions_display table"),
        ("dashboard", f"{admin}/exports/exportjob/dashboard/", "svg.import-chart"),
        ("api-keys", f"{admin}/tenants/apikey/", "#result_list"),
        ("api-key", f"{admin}/tenants/apikey/{api_key.pk}/change/", "#apikey-revoke"),
        ("oauth-clients", f"{admin}/tenants/oauthclient/", "#result_list"),
        ("oauth-client", f"{admin}/tenants/oauthclient/{client.pk}/change/", "#oauthclient-revoke"),
        ("members", f"{admin}/tenants/membership/", "#result_list"),
        ("catalog-versions", f"{admin}/tenants/serviceversion/", "#result_list"),
        ("catalog-folders", f"{admin}/tenants/folder/", "#result_list"),
        ("catalog-services", f"{admin}/tenants/service/", "#result_list"),
        ("tenants", f"{admin}/tenants/tenant/", "#result_list"),
    ]
    log_in(page, live_server)
    too_wide = {}
    for number, (name, url, ready) in enumerate(pages, start=10):
        page.goto(url)
        expect(page.locator(ready).first).to_be_visible()
        if ready == "#result_list":
            expect(page.locator("#result_list tbody tr")).not_to_have_count(0)
        shot(page, f"{number}-{name}-1366x768")
        if overflows := page.evaluate(OVERFLOWS):
            too_wide[name] = overflows
    assert too_wide == {}

    # The check does see a list wider than its container, so its silence above means something.
    page.evaluate("document.querySelector('#result_list').style.minWidth = '2000px'")
    assert any(found.startswith("changelist .results") for found in page.evaluate(OVERFLOWS))


@pytest.mark.django_db(transaction=True)
def test_supervisor_revokes_a_key_and_a_client_from_their_pages(live_server, page, busy_tenant):
    api_key = ApiKey.objects.get(name="continuous-delivery-pipeline-key")
    client = OAuthClient.objects.get()
    log_in(page, live_server)

    page.goto(f"{live_server.url}/admin/tenants/apikey/{api_key.pk}/change/")
    page.click("#apikey-revoke")
    expect(page.locator(".messagelist")).to_contain_text("API key 'continuous-delivery-pipeline-key' revoked")
    expect(page.locator("#apikey-revoke")).to_have_count(0)
    expect(page.locator(".field-revoked_at .readonly")).not_to_have_text("—")
    shot(page, "30-api-key-revoked")

    page.goto(f"{live_server.url}/admin/tenants/oauthclient/{client.pk}/change/")
    page.click("#oauthclient-revoke")
    expect(page.locator(".messagelist")).to_contain_text("OAuth client 'deployment-pipeline-production-eu-west-1' revoked")
    expect(page.locator("#changelist")).to_contain_text("0 OAuth clients")
    shot(page, "31-oauth-client-revoked")
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None and not OAuthClient.objects.exists()
