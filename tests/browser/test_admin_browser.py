"""The supervisor admin in a real browser: headless Debian Chromium driven by Playwright."""
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect, sync_playwright

from exports.models import ExportJob, JobStatus
from tenants.services import member_add
from tests.admin.conftest import make_job, store_package

pytestmark = pytest.mark.browser
from tests.factories import ServiceVersionFactory, TenantFactory

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


@pytest.fixture
def page():
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
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


def shot(page, name: str) -> None:
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_supervisor_finds_cancels_a_running_job_and_reads_the_dashboard(live_server, page, supervised_tenant):
    running = supervised_tenant

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "sue@acme.test")
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    expect(page.locator("#supervisor-dashboard-link")).to_be_visible()
    expect(page.locator("#content-main")).to_contain_text("Export jobs")
    shot(page, "01-admin-index-supervisor")

    page.click("text=Export jobs")
    expect(page.locator("#result_list tbody tr")).to_have_count(9)
    expect(page.locator("#result_list")).not_to_contain_text("globex")
    shot(page, "02-job-history")

    page.locator("#changelist-filter").get_by_role("link", name="In Progress").click()
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    expect(page.locator("#result_list")).to_contain_text("nightly-2026")
    shot(page, "03-job-history-filtered-in-progress")

    page.locator("#result_list tbody tr th a").first.click()
    expect(page.locator("h2, h1").first).to_be_visible()
    expect(page.locator(".field-status_badge")).to_contain_text("in_progress")
    expect(page.locator(".field-versions_display")).to_contain_text("quote")
    shot(page, "04-job-detail-in-progress")

    page.click("#job-cancel")
    expect(page.locator(".messagelist")).to_contain_text(f"Job {running.pk} cancelled.")
    expect(page.locator(".field-status_badge")).to_contain_text("cancelled")
    expect(page.locator("#job-cancel")).to_have_count(0)
    assert ExportJob.objects.get(pk=running.pk).status == JobStatus.CANCELLED
    shot(page, "05-job-detail-cancelled")

    page.goto(f"{live_server.url}/admin/exports/exportjob/")
    page.click("text=Supervisor dashboard")
    panel = page.locator("#tenant-acme")
    expect(panel).to_contain_text("0 / 2")  # the running job was cancelled
    expect(panel.locator("svg.daily-chart rect")).not_to_have_count(0)
    expect(panel.locator("svg.daily-chart")).to_contain_text("closed_by_timeout")
    expect(page.locator("#content-main")).not_to_contain_text("globex")
    expect(page.locator("#workers")).to_contain_text(re.compile(r"Workers"))
    shot(page, "06-supervisor-dashboard")
