"""A supervisor sees and acts on their tenant only; another tenant's objects answer 404."""
import pytest
from django.contrib import admin
from django.urls import reverse

from exports.models import ExportJob, JobStatus
from tenants.models import ApiKey, Folder, Membership, OAuthClient, Service, ServiceVersion, Tenant
from tenants.services import apikey_create, member_add, oauth_client_create
from tests.admin.conftest import logged_in, make_job

pytestmark = pytest.mark.django_db

SCOPED_MODELS = [ExportJob, Folder, Service, ServiceVersion, Membership, ApiKey, OAuthClient, Tenant]


@pytest.fixture
def both_tenants(tenant, other_tenant, version_a, version_b, admin_client_b):
    """Rows of every scoped model in acme and in globex."""
    for owner, version in ((tenant, version_a), (other_tenant, version_b)):
        make_job(owner, versions=[version])
        apikey_create(tenant=owner, name=f"{owner.slug}-key")
        member_add(tenant=owner, username=f"robot@{owner.slug}.test")
        oauth_client_create(tenant=owner, name=f"{owner.slug}-client", username=f"robot@{owner.slug}.test")
    return tenant, other_tenant


def changelist(model) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_supervisor_sees_only_their_tenants_rows(admin_client_a, both_tenants, model):
    acme, _ = both_tenants
    response = admin_client_a.get(changelist(model))
    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    model_admin = admin.site._registry[model]
    assert rows, f"acme has {model.__name__} rows"
    assert {model_admin.tenant_id_of(row) for row in rows} == {acme.pk}
    assert "globex" not in response.content.decode()  # nor in a filter's choices


@pytest.mark.parametrize("model", SCOPED_MODELS, ids=lambda model: model.__name__)
def test_superuser_sees_every_tenant(admin_client, both_tenants, model):
    response = admin_client.get(changelist(model))
    model_admin = admin.site._registry[model]
    tenants = {model_admin.tenant_id_of(row) for row in response.context["cl"].result_list}
    assert tenants == {tenant.pk for tenant in both_tenants}


@pytest.mark.parametrize("model", [ExportJob, ServiceVersion, ApiKey, Folder, OAuthClient, Membership])
def test_another_tenants_object_is_404(admin_client_a, both_tenants, model):
    _, globex = both_tenants
    model_admin = admin.site._registry[model]
    theirs = next(obj for obj in model.objects.all() if model_admin.tenant_id_of(obj) == globex.pk)
    ours = next(obj for obj in model.objects.all() if model_admin.tenant_id_of(obj) != globex.pk)

    assert admin_client_a.get(change_url(ours)).status_code == 200
    assert admin_client_a.get(change_url(theirs)).status_code == 404
    history = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_history", args=[theirs.pk])
    assert admin_client_a.get(history).status_code == 404


def test_actions_on_another_tenants_job_are_404_and_change_nothing(admin_client_a, other_tenant):
    theirs = make_job(other_tenant, status=JobStatus.IN_PROGRESS)
    for action in ("cancel", "rerun", "delete_package"):
        url = reverse(f"admin:exports_exportjob_{action}", args=[theirs.pk])
        assert admin_client_a.post(url).status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == JobStatus.IN_PROGRESS
    assert ExportJob.objects.count() == 1


def test_changelist_action_ignores_another_tenants_job(admin_client_a, tenant, other_tenant):
    theirs = make_job(other_tenant, status=JobStatus.IN_PROGRESS)
    response = admin_client_a.post(
        changelist(ExportJob), {"action": "cancel_jobs", "_selected_action": [str(theirs.pk)]}
    )
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert theirs.status == JobStatus.IN_PROGRESS


def test_plain_member_has_no_admin_access(tenant):
    member = member_add(tenant=tenant, username="user@acme.test").user
    assert not member.is_staff
    client = logged_in(member)
    for url in (reverse("admin:index"), changelist(ExportJob), reverse("admin:exports_dashboard")):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_staff_without_supervision_is_refused(tenant, django_user_model):
    member = member_add(tenant=tenant, username="user@acme.test").user
    member.is_staff = True
    member.save()
    client = logged_in(member)
    make_job(tenant)
    assert client.get(changelist(ExportJob)).status_code == 403
    assert client.get(reverse("admin:exports_dashboard")).status_code == 403
    index = client.get(reverse("admin:index"))
    assert index.context["app_list"] == []


def test_tenant_choices_are_limited_to_the_supervisors_tenants(admin_client_a, tenant, other_tenant):
    url = reverse("admin:tenants_apikey_add")
    form = admin_client_a.get(url).context["form"]
    assert list(form.fields["tenant"].queryset) == [tenant]

    response = admin_client_a.post(url, {"tenant": other_tenant.pk, "name": "sneaky", "permissions": ["Spark.Exports.json"]})
    assert response.status_code == 200
    assert "tenant" in response.context["form"].errors
    assert not ApiKey.objects.filter(name="sneaky").exists()


def test_supervisor_cannot_reach_django_rq_admin(admin_client_a, admin_client):
    url = reverse("admin:django_rq_dashboard_changelist")
    assert admin_client_a.get(url).status_code == 403
    assert admin_client.get(url).status_code == 200


def test_a_supervisor_reads_the_tenants_limits_in_words_and_the_operator_edits_them(admin_client_a, admin_client, tenant):
    url = reverse("admin:tenants_tenant_change", args=[tenant.pk])
    page = admin_client_a.get(url).content.decode()
    assert "<label>Max package:</label>" in page and "200.0\xa0MB" in page and "900 s" in page
    assert "209715200" not in page and 'name="max_package_bytes"' not in page
    assert 'name="max_package_bytes" value="209715200"' in admin_client.get(url).content.decode()
