"""POST export: every error code, reference forms, the job limit, enqueueing, odd bodies, races."""
import json
import re
import uuid
from urllib.parse import unquote

import pytest
from rq.job import Job

from exports.models import ExportJob, JobStatus
from tenants.models import ServiceVersion
from tests.conftest import SparkClient
from tests.exports.api_helpers import (
    assert_error,
    close_job,
    make_versions,
    post_export,
    post_raw,
    versions_of,
)
from tests.factories import FolderFactory, ServiceFactory, ServiceVersionFactory, make_api_key
from tests.query_counts import assert_queries

pytestmark = pytest.mark.django_db


# --- INVALID_REQUEST ----------------------------------------------------------------------


def test_body_not_json_is_invalid_request(api):
    assert_error(post_raw(api, "{inputs: nope"), 400, "INVALID_REQUEST", "JSON")


def test_form_encoded_body_is_refused_as_not_json(api):
    response = post_raw(api, "inputs=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert response.json()["code"] == "INVALID_REQUEST"
    assert "JSON" in response.json()["message"]


def test_json_array_body_is_invalid_request(api):
    assert_error(post_raw(api, "[]"), 400, "INVALID_REQUEST", "dictionary")


def test_services_as_a_string_is_invalid_request(api):
    body = assert_error(
        post_export(api, {"inputs": {"services": "finance/pricing"}}),
        400,
        "INVALID_REQUEST",
        "inputs.services",
    )
    assert "services" in body["details"]["inputs"]


@pytest.mark.parametrize("field", ["file_filter", "version_filter"])
def test_unknown_filter_is_invalid_request(api, catalog, field):
    response = post_export(api, {"inputs": {"services": ["finance/pricing"]}, field: "everything"})
    assert_error(response, 400, "INVALID_REQUEST", field, "everything")


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"inputs": {}},
        {"inputs": {"folders": [], "services": [], "version_ids": []}},
        {"file_filter": "migrate"},
    ],
)
def test_no_inputs_is_invalid_request(api, body):
    response = post_export(api, body)
    assert_error(response, 400, "INVALID_REQUEST", "inputs")


@pytest.mark.parametrize("file_name", ["../x.zip", "a/b.zip", "x.txt", "..zip", "", "x" * 200 + ".zip"])
def test_bad_file_name_is_invalid_request(api, catalog, file_name):
    response = post_export(api, {"inputs": {"services": ["finance/pricing"]}, "file_name": file_name})
    assert_error(response, 400, "INVALID_REQUEST", "file_name")
    assert not ExportJob.objects.exists()


# --- INVALID_SERVICE_URI ------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference",
    [
        "a/b/c",
        "a/b[x.y]",
        "a/b[1.2.3.4]",
        "a/b[1.2",
        "a/b[1][2]",
        "version/not-a-uuid",
        "service/not-a-uuid",
        "service/8b6b3b97-eb3a-4388-b3b2-f69fda0cd2fe[1.0]",  # a fixed id: parallel workers collect the same tests
        "not-a-uuid",
        "folders/f/services",
        "a[1.0]/b",
        "f/s]x",
        "finance/pricing[\u0661.2]",  # an Arabic-Indic digit is not a version digit
    ],
)
def test_malformed_reference_is_invalid_service_uri(api, catalog, reference):
    response = post_export(api, {"inputs": {"services": [reference]}})
    body = assert_error(response, 400, "INVALID_SERVICE_URI", repr(reference))
    assert body["details"] == {"reference": reference}
    assert not ExportJob.objects.exists()


def test_non_uuid_version_id_is_invalid_service_uri(api, catalog):
    response = post_export(api, {"inputs": {"version_ids": ["1.2.3"]}})
    body = assert_error(response, 400, "INVALID_SERVICE_URI", "'1.2.3'", "version_id")
    assert body["details"] == {"version_id": "1.2.3"}


# --- UNAUTHORIZED / FORBIDDEN -------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"HTTP_X_SYNTHETIC_KEY": "nope", "HTTP_X_TENANT_NAME": "acme"},
        {"HTTP_X_SYNTHETIC_KEY": "abc.def", "HTTP_X_TENANT_NAME": "acme"},
        {"HTTP_AUTHORIZATION": "Bearer None"},
        {"HTTP_AUTHORIZATION": "Bearer not-a-token-we-issued"},
        {"HTTP_AUTHORIZATION": "Basic dXNlcjpwYXNz"},
    ],
)
@pytest.mark.parametrize("method,path", [("get", "export/status"), ("post", "export")])
def test_missing_or_invalid_credentials_are_unauthorized(tenant, headers, method, path):
    client = SparkClient(tenant.slug, "unused")
    client.credentials(**headers)
    response = getattr(client, method)(client.api(path), {"inputs": {"folders": ["f"]}}, format="json")
    assert_error(response, 401, "UNAUTHORIZED")


def test_unauthorized_message_says_how_to_authenticate(tenant):
    client = SparkClient(tenant.slug, "unused")
    client.credentials()
    body = assert_error(client.get(client.api("export/status")), 401, "UNAUTHORIZED")
    assert "x-synthetic-key" in body["message"] and "Bearer" in body["message"]


def test_api_key_without_tenant_header_is_unauthorized(tenant):
    client = SparkClient(tenant.slug, make_api_key(tenant))
    client.credentials(HTTP_X_SYNTHETIC_KEY=client._credentials["HTTP_X_SYNTHETIC_KEY"])
    assert_error(client.get(client.api("export/status")), 401, "UNAUTHORIZED", "x-tenant-name")


def test_key_without_export_permission_is_forbidden(tenant, catalog):
    client = SparkClient(
        tenant.slug, make_api_key(tenant, name="imports-only", permissions=["Spark.Imports.json"])
    )
    response = post_export(client, {"inputs": {"services": ["finance/pricing"]}})
    assert_error(response, 403, "FORBIDDEN", "imports-only", "Spark.Exports.json")
    assert_error(client.get(client.api("export/status")), 403, "FORBIDDEN")


def test_all_encompassing_key_may_export(tenant, catalog):
    client = SparkClient(
        tenant.slug,
        make_api_key(tenant, name="proxy", permissions=["Spark.AllEncompassingProxy.json"]),
    )
    response = post_export(client, {"inputs": {"services": ["finance/pricing"]}})
    assert response.status_code == 200, response.json()


def test_key_of_another_tenant_is_forbidden_on_this_tenants_url(tenant, other_tenant, catalog):
    key = make_api_key(other_tenant, name="globex-key")
    for header_tenant in (tenant.slug, other_tenant.slug):
        client = SparkClient(tenant.slug, key)
        client.credentials(HTTP_X_SYNTHETIC_KEY=key, HTTP_X_TENANT_NAME=header_tenant)
        assert_error(client.get(client.api("export/status")), 403, "FORBIDDEN", tenant.slug)
        response = post_export(client, {"inputs": {"services": ["finance/pricing"]}})
        assert_error(response, 403, "FORBIDDEN")
    assert not ExportJob.objects.exists()


def test_tenant_header_mismatch_is_forbidden(api, tenant):
    api.credentials(
        HTTP_X_SYNTHETIC_KEY=api._credentials["HTTP_X_SYNTHETIC_KEY"], HTTP_X_TENANT_NAME="globex"
    )
    assert_error(api.get(api.api("export/status")), 403, "FORBIDDEN")


def test_unknown_tenant_in_url_is_forbidden(api):
    response = api.get("/no-such-tenant/api/v4/export/status")
    assert response.status_code in (403, 404)
    assert response.json()["code"] in ("FORBIDDEN", "NOT_FOUND")


# --- not found ----------------------------------------------------------------------------


def test_unknown_folder_is_folder_not_found(api, catalog):
    response = post_export(api, {"inputs": {"folders": ["finance", "Nope"]}})
    body = assert_error(response, 404, "FOLDER_NOT_FOUND", "'Nope'")
    assert body["details"] == {"folders": ["Nope"]}


def test_folder_of_another_tenant_is_not_found(api, other_tenant):
    make_versions(other_tenant, "secret", "svc", "1.0.0")
    assert_error(post_export(api, {"inputs": {"folders": ["secret"]}}), 404, "FOLDER_NOT_FOUND")


def test_unknown_service_name_is_service_not_found(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/pricing", "finance/missing"]}})
    assert_error(response, 404, "SERVICE_NOT_FOUND", "finance/missing")


def test_service_names_are_case_sensitive(api, catalog):
    response = post_export(api, {"inputs": {"services": ["Finance/Pricing"]}})
    assert_error(response, 404, "SERVICE_NOT_FOUND", "Finance/Pricing")


@pytest.mark.parametrize("form", ["{}", "service/{}"])
def test_unknown_service_id_is_service_not_found(api, catalog, form):
    service_id = str(uuid.uuid4())
    response = post_export(api, {"inputs": {"services": [form.format(service_id)]}})
    assert_error(response, 404, "SERVICE_NOT_FOUND", service_id)


def test_service_id_of_another_tenant_is_not_found(api, other_tenant):
    (version,) = make_versions(other_tenant, "secret", "svc", "1.0.0")
    service_id = str(version.service.service_id)
    assert_error(post_export(api, {"inputs": {"services": [service_id]}}), 404, "SERVICE_NOT_FOUND")
    version_id = str(version.version_id)
    assert_error(post_export(api, {"inputs": {"version_ids": [version_id]}}), 404, "VERSION_NOT_FOUND")


def test_version_prefix_matching_nothing_is_version_not_found(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/pricing[1.3]"]}})
    body = assert_error(response, 404, "VERSION_NOT_FOUND", "finance/pricing", "1.3", "1.2.0", "2.0.0")
    assert body["details"] == {"reference": "finance/pricing[1.3]"}


@pytest.mark.parametrize("where", ["version_ids", "services"])
def test_unknown_version_id_is_version_not_found(api, catalog, where):
    version_id = str(uuid.uuid4())
    value = version_id if where == "version_ids" else f"version/{version_id}"
    response = post_export(api, {"inputs": {where: [value]}})
    assert_error(response, 404, "VERSION_NOT_FOUND", version_id)


def test_service_without_versions_is_version_not_found(api, tenant):
    ServiceFactory(folder=FolderFactory(tenant=tenant, name="f"), name="empty")
    response = post_export(api, {"inputs": {"services": ["f/empty"]}})
    assert_error(response, 404, "VERSION_NOT_FOUND", "f/empty")


# --- 422s ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs",
    [
        {"services": ["finance/pricing[1.2]"]},
        {"services": ["finance/quotes", "finance/pricing[2.0.0]"]},
        {"services": ["version/{pricing_id}"]},
        {"version_ids": ["{pricing_id}"]},
        {"folders": ["alpha"], "version_ids": ["{pricing_id}"]},
    ],
)
def test_latest_with_a_specific_version_is_a_conflict(api, catalog, inputs):
    pricing_id = str(catalog["pricing"][0].version_id)
    inputs = json.loads(json.dumps(inputs).replace("{pricing_id}", pricing_id))
    response = post_export(api, {"inputs": inputs, "version_filter": "latest"})
    body = assert_error(response, 422, "VERSION_FILTER_CONFLICT", "latest", "'all'")
    assert body["details"]["references"]
    assert not ExportJob.objects.exists()


def test_empty_folder_has_no_service(api, catalog, tenant):
    FolderFactory(tenant=tenant, name="empty")
    response = post_export(api, {"inputs": {"folders": ["finance", "empty"]}})
    body = assert_error(response, 422, "FOLDER_HAS_NO_SERVICE", "'empty'")
    assert body["details"] == {"folders": ["empty"]}


def test_folder_whose_services_have_no_versions_has_no_service(api, tenant):
    ServiceFactory(folder=FolderFactory(tenant=tenant, name="hollow"), name="svc")
    assert_error(post_export(api, {"inputs": {"folders": ["hollow"]}}), 422, "FOLDER_HAS_NO_SERVICE", "hollow")


def uncompile(version):
    """Drop the Neuron package (ServiceVersionFactory ignores compiled=False, see below)."""
    ServiceVersion.objects.filter(pk=version.pk).update(neuron="", neuron_size=None, neuron_sha256="")


def test_factory_compiled_false_builds_an_uncompiled_version(tenant):
    # Fails until tests/factories.py passes `compiled` through to _create (it is excluded).
    version = ServiceVersionFactory(service__folder__tenant=tenant, compiled=False)
    assert not version.is_compiled


def test_uncompiled_version_is_neuron_not_compiled(api, tenant):
    ServiceVersionFactory(service__folder__tenant=tenant, service__folder__name="f",
                          service__name="s", version="1.0.0")
    service = ServiceFactory(folder__tenant=tenant, folder__name="g", name="draft")
    uncompile(ServiceVersionFactory(service=service, version="1.2.0", compiled=False))
    response = post_export(api, {"inputs": {"folders": ["f"], "services": ["g/draft"]}})
    body = assert_error(response, 422, "NEURON_NOT_COMPILED", "g/draft[1.2.0]", "Compile")
    assert body["details"] == {"service_versions": ["g/draft[1.2.0]"]}
    assert not ExportJob.objects.exists()


def test_uncompiled_version_outside_the_selection_does_not_matter(api, tenant):
    service = ServiceFactory(folder__tenant=tenant, folder__name="g", name="draft")
    ServiceVersionFactory(service=service, version="1.0.0")
    uncompile(ServiceVersionFactory(service=service, version="1.1.0", compiled=False))
    response = post_export(api, {"inputs": {"services": ["g/draft[1.0]"]}})
    assert response.status_code == 200, response.json()


def test_package_over_the_tenant_limit_is_too_large(api, tenant, catalog):
    tenant.max_package_bytes = 1024
    tenant.save(update_fields=["max_package_bytes"])
    response = post_export(api, {"inputs": {"folders": ["finance"]}})
    body = assert_error(response, 422, "PACKAGE_TOO_LARGE", "limit", "onpremises")
    assert body["details"]["limit_bytes"] == 1024
    assert body["details"]["estimated_bytes"] > 1024
    assert not ExportJob.objects.exists()


# --- job limit and cancel -----------------------------------------------------------------


def test_second_job_over_the_limit_is_refused_with_retry_after(api, catalog):
    assert post_export(api, {"inputs": {"services": ["finance/pricing"]}}).status_code == 200
    response = post_export(api, {"inputs": {"services": ["finance/quotes"]}})
    assert_error(response, 429, "JOB_LIMIT_REACHED", "limit is 1")
    assert int(response["Retry-After"]) > 0
    assert ExportJob.objects.count() == 1


def test_job_limit_counts_jobs_of_every_caller(api, second_api, catalog):
    assert post_export(api, {"inputs": {"services": ["finance/pricing"]}}).status_code == 200
    response = post_export(second_api, {"inputs": {"services": ["finance/quotes"]}})
    assert_error(response, 429, "JOB_LIMIT_REACHED")


def test_limit_of_two_refuses_the_third(api, tenant, catalog):
    tenant.export_api_job_limit = 2
    tenant.save(update_fields=["export_api_job_limit"])
    first = post_export(api, {"inputs": {"services": ["finance/pricing"]}})
    ExportJob.objects.filter(pk=first.json()["id"]).update(status=JobStatus.IN_PROGRESS)
    assert post_export(api, {"inputs": {"services": ["finance/quotes"]}}).status_code == 200
    response = post_export(api, {"inputs": {"folders": ["alpha"]}})
    assert_error(response, 429, "JOB_LIMIT_REACHED", "limit is 2")
    assert response.has_header("Retry-After")


def test_finished_jobs_do_not_count_against_the_limit(api, catalog):
    first = post_export(api, {"inputs": {"services": ["finance/pricing"]}}).json()["id"]
    close_job(first)
    assert post_export(api, {"inputs": {"services": ["finance/quotes"]}}).status_code == 200


# --- enqueueing ---------------------------------------------------------------------------


def test_accepted_job_is_enqueued_exactly_once_after_commit(api, catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = post_export(api, {"inputs": {"services": ["finance/pricing"]}})
    assert response.status_code == 200
    assert len(callbacks) == 1


def test_refused_job_is_not_enqueued(api, catalog, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        post_export(api, {"inputs": {"services": ["finance/nope"]}})
        post_export(api, {"inputs": {"services": ["finance/pricing[1.2]"]}, "version_filter": "latest"})
    assert callbacks == []


def test_accepted_job_lands_on_the_redis_queue(api, catalog, redis_queue, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = post_export(api, {"inputs": {"services": ["finance/pricing"]}})
    assert len(callbacks) == 1
    assert redis_queue.job_ids == [response.json()["id"]]
    # The names RQ stores: jobs queued before an upgrade must still find their functions.
    rq_job = Job.fetch(response.json()["id"], connection=redis_queue.connection)
    assert rq_job.func_name == "exports.jobs.run_export_job"
    assert rq_job._failure_callback_name == "exports.jobs.on_export_job_failure"


# --- reference forms ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "reference,expected",
    [
        ("finance/pricing[1.2.5]", ["1.2.5"]),
        ("finance/pricing[1.2]", ["1.2.5"]),
        ("finance/pricing[1.20]", ["1.20.0"]),
        ("finance/pricing[1.1]", None),
        ("finance/pricing[1]", ["1.20.0"]),
        ("finance/pricing[2]", ["2.0.0"]),
        ("finance/pricing[ 1.9 ]", ["1.9.0"]),
        ("folders/finance/services/pricing[1.0]", None),
        ("folders/finance/services/pricing[1.10]", ["1.10.0"]),
    ],
)
def test_version_reference_selects_the_highest_component_wise_match(api, catalog, reference, expected):
    response = post_export(api, {"inputs": {"services": [reference]}})
    if expected is None:
        assert_error(response, 404, "VERSION_NOT_FOUND")
        return
    assert response.status_code == 200, response.json()
    assert [row["version_source"] for row in response.json()["outputs"]["service_versions"]] == expected


ALL_PRICING = [f"finance/pricing[{v}]" for v in ("1.2.0", "1.2.5", "1.9.0", "1.10.0", "1.20.0", "2.0.0")]


@pytest.mark.parametrize(
    "reference",
    [
        "finance/pricing",
        "finance/pricing[]",
        "folders/finance/services/pricing",
        "//finance//pricing/",
        " finance/pricing ",
        "{service_id}",
        "service/{service_id}",
        "/service/{service_id}/",
    ],
)
def test_service_reference_forms_select_every_version(api, catalog, reference):
    service_id = str(catalog["pricing"][0].service.service_id)
    response = post_export(api, {"inputs": {"services": [reference.format(service_id=service_id)]}})
    assert response.status_code == 200, response.json()
    assert versions_of(response.json()) == ALL_PRICING


def test_version_id_reference_selects_that_version(api, catalog):
    version = catalog["pricing"][3]
    response = post_export(api, {"inputs": {"services": [f"version/{version.version_id}"]}})
    assert response.status_code == 200, response.json()
    assert versions_of(response.json()) == ["finance/pricing[1.10.0]"]


def test_union_without_duplicates_sorted_by_folder_service_semver(api, catalog):
    pricing, quotes, alpha = catalog["pricing"], catalog["quotes"], catalog["alpha"]
    response = post_export(
        api,
        {
            "inputs": {
                "folders": ["finance"],
                "services": [
                    "finance/pricing[1.9]",
                    "finance/quotes",
                    f"version/{alpha[0].version_id}",
                    str(pricing[0].service.service_id),
                ],
                "version_ids": [str(quotes[0].version_id), str(alpha[0].version_id)],
            }
        },
    )
    assert response.status_code == 200, response.json()
    body = response.json()
    assert versions_of(body) == [
        "alpha/zeta[3.0.0]",
        *ALL_PRICING,
        "finance/quotes[1.0.0]",
        "finance/quotes[1.1.0]",
    ]
    assert [row["service_uri_source"] for row in body["outputs"]["services"]] == [
        "alpha/zeta",
        "finance/pricing",
        "finance/quotes",
    ]
    assert ExportJob.objects.get(pk=body["id"]).versions.count() == 9


def test_specific_version_with_all_selects_only_that_version(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/pricing[1.2.0]", "finance/quotes[1.1]"]}})
    assert versions_of(response.json()) == ["finance/pricing[1.2.0]", "finance/quotes[1.1.0]"]


def test_version_filter_latest_selects_the_highest_version_of_each_service(api, catalog):
    response = post_export(api, {"inputs": {"folders": ["finance", "alpha"]}, "version_filter": "latest"})
    assert response.status_code == 200, response.json()
    assert versions_of(response.json()) == [
        "alpha/zeta[3.0.0]",
        "finance/pricing[2.0.0]",
        "finance/quotes[1.1.0]",
    ]
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert job.version_filter == "latest"


def test_version_filter_latest_with_empty_brackets_is_no_conflict(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/pricing[]"]}, "version_filter": "latest"})
    assert response.status_code == 200, response.json()
    assert versions_of(response.json()) == ["finance/pricing[2.0.0]"]


@pytest.mark.parametrize("path", ["export/x/y/z", "exports", "export/status/extra"])
def test_unknown_endpoint_answers_json_404(api, path):
    response = api.get(api.api(path))
    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "NOT_FOUND"


def test_version_filter_all_is_the_default(api, catalog):
    response = post_export(api, {"inputs": {"folders": ["finance"]}})
    assert len(versions_of(response.json())) == 8
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert (job.version_filter, job.file_filter) == ("all", "migrate")


def test_sdk_body_is_accepted(api, catalog):
    body = {
        "inputs": {"folders": ["alpha"], "services": ["finance/quotes"], "version_ids": []},
        "file_filter": "migrate",
        "version_filter": "latest",
        "source_system": "Spark Python SDK",
        "correlation_id": None,
    }
    response = api.post(api.api("export"), data=json.dumps(body), content_type="application/json")
    assert response.status_code == 200, response.json()
    document = response.json()
    assert versions_of(document) == ["alpha/zeta[3.0.0]", "finance/quotes[1.1.0]"]
    assert document["source_system"] == "Spark Python SDK"
    assert document["correlation_id"] is None


def test_nulls_mean_defaults(api, catalog):
    response = post_export(
        api,
        {"inputs": {"services": ["finance/quotes"]}, "file_filter": None, "version_filter": None, "file_name": None},
    )
    assert response.status_code == 200, response.json()
    job = ExportJob.objects.get(pk=response.json()["id"])
    assert (job.file_filter, job.version_filter, job.file_name) == ("migrate", "all", "package.zip")


def test_onpremises_file_filter_is_stored(api, catalog):
    response = post_export(api, {"inputs": {"services": ["finance/quotes"]}, "file_filter": "onpremises"})
    assert ExportJob.objects.get(pk=response.json()["id"]).file_filter == "onpremises"


def test_source_system_and_correlation_id_are_echoed(api, catalog, job_id):
    close_job(job_id)
    response = post_export(
        api,
        {"inputs": {"services": ["finance/quotes"]}, "source_system": "CI ünïcode", "correlation_id": "run-42"},
    )
    body = response.json()
    assert (body["source_system"], body["correlation_id"]) == ("CI ünïcode", "run-42")
    status = api.get(api.api(f"export/{body['id']}/status")).json()
    assert (status["source_system"], status["correlation_id"]) == ("CI ünïcode", "run-42")


@pytest.mark.parametrize("file_name,expected", [(None, "package.zip"), ("my export (1).zip", "my export (1).zip")])
def test_file_name_is_used_in_the_download_url(api, catalog, file_name, expected):
    body = {"inputs": {"services": ["finance/quotes"]}}
    if file_name:
        body["file_name"] = file_name
    job_id = post_export(api, body).json()["id"]
    close_job(job_id)
    document = api.get(api.api(f"export/{job_id}/status")).json()
    (file,) = document["outputs"]["files"]
    assert file["file"].startswith(f"http://testserver/acme/api/v4/export/{job_id}/file/")
    path = file["file"].split("?")[0].rsplit("/", 1)[1]
    assert unquote(path) == expected
    assert re.search(r"\?token=[\w:-]+$", file["file"])
    assert file["file_hash"] == "ab" * 32
    assert file["zip_process_time"] == 42


# --- query counts -------------------------------------------------------------------------


def test_post_export_query_count_does_not_grow_with_references(api, high_limit):
    versions = make_versions(high_limit, "f", "svc", *[f"1.{i}.0" for i in range(12)])
    api.get(api.api("export/status"))
    assert_queries("POST export, by references", lambda: post_export(api, {"inputs": {"services": ["f/svc[1.0]"], "version_ids": [str(versions[0].version_id)]}}))
    refs = [f"f/svc[1.{i}]" for i in range(12)] + [f"version/{v.version_id}" for v in versions]
    response = assert_queries("POST export, by references", lambda: post_export(api, {"inputs": {"services": refs, "version_ids": [str(v.version_id) for v in versions]}}))
    assert response.status_code == 200


# --- odd shapes never 500 -----------------------------------------------------------------


NESTED = {"a": None}
for _ in range(200):
    NESTED = {"a": NESTED}

ODD_BODIES = [
    "null",
    "1",
    '"x"',
    "[]",
    "true",
    "{}",
    '{"inputs": null}',
    '{"inputs": []}',
    '{"inputs": "finance"}',
    '{"inputs": {"services": [null]}}',
    '{"inputs": {"services": [1]}}',
    '{"inputs": {"services": [true]}}',
    '{"inputs": {"services": [{"a": 1}]}}',
    '{"inputs": {"services": [[]]}}',
    '{"inputs": {"folders": [1.5e400]}}',
    '{"inputs": {"folders": [NaN]}}',
    '{"inputs": {"folders": {"a": "b"}}}',
    '{"inputs": {"version_ids": [{"id": 1}]}}',
    '{"inputs": {"version_ids": ["\\u0000"]}}',
    '{"inputs": {"services": ["fin\\u0000ance/pricing"]}}',
    '{"inputs": {"folders": ["fin\\u0000ance"]}}',
    '{"inputs": {"folders": ["finance"]}, "source_system": "a\\u0000b"}',
    '{"inputs": {"folders": ["finance"]}, "correlation_id": "a\\u0000b"}',
    '{"inputs": {"folders": ["finance"]}, "file_name": "a\\u0000.zip"}',
    '{"inputs": {"folders": ["\\ud800"]}}',
    '{"inputs": {"services": ["\\ud800/x"]}}',
    '{"inputs": {"version_ids": ["\\udfff"]}}',
    '{"inputs": {"folders": ["finance"]}, "source_system": "\\ud800"}',
    '{"inputs": {"folders": ["finance"]}, "correlation_id": "\\ud800"}',
    '{"inputs": {"services": ["f/s[\\ud800]"]}}',
    json.dumps({"inputs": {"folders": ["x" * 10_000]}}),
    json.dumps({"inputs": {"services": ["x" * 10_000]}}),
    json.dumps({"inputs": {"services": ["f/" + "s" * 300]}}),
    json.dumps({"inputs": {"services": ["f/s[" + "1" * 10_000 + "]"]}}),
    json.dumps({"inputs": {"version_ids": ["x" * 10_000]}}),
    json.dumps({"inputs": {"folders": ["finance"]}, "source_system": "x" * 10_000}),
    json.dumps({"inputs": {"folders": ["finance"]}, "file_name": "x" * 10_000 + ".zip"}),
    json.dumps({"inputs": {"folders": ["finance"]}, "version_filter": NESTED}),
    json.dumps({"inputs": NESTED}),
    json.dumps({"inputs": {"services": [NESTED]}}),
    "[" * 100_000 + "]" * 100_000,
    '{"inputs":' * 50_000 + "1" + "}" * 50_000,
    json.dumps({"inputs": {"folders": ["финансы", "金融", "🚀"]}}),
    json.dumps({"inputs": {"services": ["финансы/цены[1.0]", "🚀/🛸"]}}),
    json.dumps({"inputs": {"services": ["f/s\\x"]}}),
    json.dumps({"inputs": {"services": ["../../etc/passwd"]}}),
    json.dumps({"inputs": {"folders": ["finance"]}, "file_filter": ["migrate"]}),
    json.dumps({"inputs": {"folders": ["finance"]}, "file_filter": {"a": 1}}),
    json.dumps({"inputs": {"folders": ["finance"] * 20_000}}),
    b"\xff\xfe garbage",
    "",
]


@pytest.mark.parametrize("text", ODD_BODIES, ids=range(len(ODD_BODIES)))
def test_odd_bodies_answer_a_json_4xx_with_a_code(api, catalog, text):
    data = text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass")
    response = api.post(api.api("export"), data=data, content_type="application/json")
    assert 400 <= response.status_code < 500, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert re.fullmatch(r"[A-Z_]+", body["code"])
    assert body["message"]
    assert not ExportJob.objects.exists()


# --- concurrency --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_posts_never_exceed_the_job_limit(tenant, redis_queue):
    import threading

    from django.db import connections

    make_versions(tenant, "finance", "pricing", "1.0.0")
    key = make_api_key(tenant, name="racer")
    barrier = threading.Barrier(4)
    statuses = []

    def race():
        try:
            client = SparkClient(tenant.slug, key)
            barrier.wait()
            statuses.append(post_export(client, {"inputs": {"folders": ["finance"]}}).status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=race) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [200, 429, 429, 429]
    (job,) = ExportJob.objects.all()
    assert redis_queue.job_ids == [str(job.pk)]
