"""Which error `code`s each operation of the tenant API answers, per HTTP status: one table.

The OpenAPI schema reads it (`operation_schema`: each error response's description lists its
codes), docs/api.md follows it, and tests check it against the codes the product raises
(tests/test_api_docs.py) and the fuzzer against the codes it answers (tests/security/).
"""
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers

# Every error body's code: its one HTTP status, and when it is answered.
ERROR_CODES: dict[str, tuple[int, str]] = {
    "INVALID_REQUEST": (400, "The request is malformed: the body is not JSON (export, cancel) or not multipart "
                        "with `importRequestEntity` and `file` (import), a field is missing or has a wrong type or "
                        "value, no inputs are given, two `services_modify` items share a destination (names that differ only "
                        "in case included), the Idempotency-Key header is longer than 200 characters, JSON is nested "
                        "too deeply or holds a key twice, or `file` or `importRequestEntity` is sent twice. "
                        "`details` holds the field errors."),
    "INVALID_SERVICE_URI": (400, "A service reference is malformed (`inputs.services`, `service_uri_source`, "
                            "`service_uri_destination`), or an `inputs.version_ids` item is not a UUID."),
    "UNAUTHORIZED": (401, "No credentials; an unknown or revoked API key; an API key without `x-tenant-name`; "
                     "an unknown or expired bearer token (fetch a new one and retry)."),
    "FORBIDDEN": (403, "The credentials belong to another tenant, `x-tenant-name` names another tenant, or "
                  "the API key lacks the feature permission of this API."),
    "INVALID_DOWNLOAD_LINK": (403, "The signed link's token is altered, expired, or was issued to a credential "
                              "that may no longer act: read the status again for a fresh link."),
    "FOLDER_NOT_FOUND": (404, "Export: a folder of `inputs.folders` does not exist. Import: a destination "
                         "folder does not exist (create it first)."),
    "SERVICE_NOT_FOUND": (404, "Export: a referenced service (by name or service_id) does not exist. Import: "
                          "the package holds no service (or version) matching `service_uri_source`."),
    "VERSION_NOT_FOUND": (404, "A `version_id` does not exist, no version matches a `[version]`, or a selected "
                          "service has no version."),
    "JOB_NOT_FOUND": (404, "No job with this id in the tenant that the caller may see (another caller's job "
                      "answers this too, unless the caller is a supervisor); for a download, also a file "
                      "name that is not the job's."),
    "NOT_ACCEPTABLE": (406, "The Accept header admits no type this operation answers (`application/json`)."),
    "JOB_NOT_CANCELLABLE": (409, "The job has already finished; `details.status` says how."),
    "JOB_NOT_CLOSED": (409, "The job is not `closed`, so it has no package; `details.status` says where it is."),
    "SERVICE_EXISTS": (409, "A destination service exists and `services_existing` is `abort` (the default)."),
    "SERVICE_NAME_CONFLICT": (409, "A destination service's name differs only in case from a service of its folder "
                              "(`details.services`, `details.existing`)."),
    "PACKAGE_EXPIRED": (410, "The package was deleted after the retention period: run the export again."),
    "EXCEEDED_FILE_SIZE": (413, "The upload is larger than the tenant's package size limit."),
    "REQUEST_TOO_LARGE": (413, "The request body (the file aside) is over DATA_UPLOAD_MAX_MEMORY_SIZE (2.5 MB), or "
                          "`importRequestEntity` over 1 MiB; `details.limit_bytes` says the limit."),
    "VERSION_FILTER_CONFLICT": (422, "`version_filter` `latest` with a reference to a specific version "
                                "(`[version]`, `version/{id}` or `inputs.version_ids`)."),
    "FOLDER_HAS_NO_SERVICE": (422, "A folder of `inputs.folders` holds no service with a version."),
    "NEURON_NOT_COMPILED": (422, "A selected version has no compiled Neuron package."),
    "PACKAGE_TOO_LARGE": (422, "The package would exceed the tenant's size limit."),
    "DEPENDENCY_NOT_FOUND": (422, "With `include_dependencies`, a selected version (or one it calls) makes an Xcall "
                             "that names no version of the tenant. `details.dependencies` lists each caller "
                             "(`service_uri_source`, `version_id_source`) and its `xcall`."),
    "DEPENDENCIES_UNKNOWN": (422, "With `include_dependencies`, the workbook of a version in the closure could not "
                             "be read, so the services it calls are unknown; `details.service_versions` names it."),
    "IDEMPOTENCY_KEY_REUSED": (422, "This credential used the Idempotency-Key for a different request; "
                               "`details.job_id` is that request's job."),
    "INVALID_IMPORT_ZIP": (422, "The upload is not an importable package: not a ZIP, truncated, unsafe paths, "
                           "a zip bomb, a missing or invalid manifest, a file whose SHA-256 differs from the "
                           "manifest, a workbook that is not an Excel workbook, or an `onpremises` package. The "
                           "message names the problem."),
    "MISSING_DEPENDENCY": (422, "Import: an XCALL of a version the import would deploy reaches no service in the "
                           "tenant, counting the versions the import adds (and not those a `replace` removes). "
                           "`details.missing_dependencies` lists each (`service_uri_destination`, "
                           "`service_uri_source`, `xcall`, `cell`). Import the dependency first, include it in the "
                           "package, or send `allow_missing_dependencies: true`."),
    "JOB_LIMIT_REACHED": (429, "The tenant already runs its limit of jobs of this kind; retry after "
                          "`Retry-After` seconds."),
    "RATE_LIMITED": (429, "Too many failed authentications from this address (`AUTH_FAILURE_RATE`) or, on a "
                     "job-creating POST, too many jobs created by this credential (`JOB_CREATE_RATE`); retry "
                     "after `Retry-After` seconds."),
    "SERVICE_UNAVAILABLE": (503, "The database or the job queue is unreachable; retry after `Retry-After` seconds."),
    # Not of one operation: any request may answer these.
    "NOT_FOUND": (404, "No endpoint at this path."),
    "METHOD_NOT_ALLOWED": (405, "The endpoint does not take this HTTP method."),
    "INTERNAL_ERROR": (500, "The server failed; the error is logged."),
    "ERROR": (500, "Any other error of the REST framework (not expected)."),
}
ANY_REQUEST = ("NOT_FOUND", "METHOD_NOT_ALLOWED", "INTERNAL_ERROR", "ERROR")

# The codes of a failed or timed-out job's `errors[]` in its status document.
JOB_ERROR_CODES: dict[str, str] = {
    "JOB_TIMEOUT": "The job ran past the tenant's job timeout (status `closed_by_timeout`).",
    "WORKER_LOST": "The worker running the job stopped (killed, or died), or the reaper ended the job.",
    "SERVICE_UNAVAILABLE": "The job queue was unreachable when the job was queued (the POST answered 503).",
    "STORAGE_ERROR": "Reading or writing storage failed.",
    "DATABASE_ERROR": "Export: the database connection was lost during the job.",
    "STORED_FILE_CHANGED": "Export: a stored workbook or Neuron package no longer matches its recorded CRC-32 "
                           "(or SHA-256, for a version whose CRC-32 is not recorded yet).",
    "PACKAGE_TOO_LARGE": "Export: the package grew past the tenant's size limit while it was written.",
    "PACKAGE_EXPIRED": "Export: the package of this closed job was deleted after the retention period.",
    "INTERNAL_ERROR": "An unexpected failure (logged).",
}
IMPORT_JOB_ERRORS = (
    "An import whose plan no longer holds when the worker applies it (the catalog changed since the "
    "upload) fails with the code that POST import would have answered, e.g. SERVICE_EXISTS, "
    "FOLDER_NOT_FOUND or MISSING_DEPENDENCY. Nothing is imported."
)
# The codes of `warnings[]` in an import status document.
WARNING_CODES: dict[str, str] = {
    "SERVICE_NOT_SELECTED": "A service of the package is not in `services_modify`, so it was not imported.",
    "MISSING_DEPENDENCY": "With `allow_missing_dependencies`: an XCALL of an imported version reaches no service "
                          "in the tenant; the call fails until that service is imported.",
    "DYNAMIC_DEPENDENCY": "An imported version calls a service named by an expression (not a literal), known only "
                          "when the workbook calculates, so it could not be checked.",
}

_ANSWERED_BY_EVERY_OPERATION = ("UNAUTHORIZED", "FORBIDDEN", "RATE_LIMITED", "SERVICE_UNAVAILABLE")
_JSON = ("NOT_ACCEPTABLE",)
OPERATION_ERRORS: dict[str, tuple[str, ...]] = {
    "export_create": (
        *_ANSWERED_BY_EVERY_OPERATION, *_JSON, "INVALID_REQUEST", "INVALID_SERVICE_URI", "FOLDER_NOT_FOUND",
        "SERVICE_NOT_FOUND", "VERSION_NOT_FOUND", "VERSION_FILTER_CONFLICT", "FOLDER_HAS_NO_SERVICE",
        "NEURON_NOT_COMPILED", "DEPENDENCY_NOT_FOUND", "DEPENDENCIES_UNKNOWN", "PACKAGE_TOO_LARGE",
        "IDEMPOTENCY_KEY_REUSED", "JOB_LIMIT_REACHED", "REQUEST_TOO_LARGE",
    ),
    "export_status": (*_ANSWERED_BY_EVERY_OPERATION, *_JSON, "JOB_NOT_FOUND"),
    "export_cancel": (
        *_ANSWERED_BY_EVERY_OPERATION, *_JSON, "INVALID_REQUEST", "JOB_NOT_FOUND", "JOB_NOT_CANCELLABLE",
        "REQUEST_TOO_LARGE",
    ),
    "export_tenant_status": (*_ANSWERED_BY_EVERY_OPERATION, *_JSON),
    # The package is answered whatever the Accept header says: no NOT_ACCEPTABLE.
    "export_download": (
        *_ANSWERED_BY_EVERY_OPERATION, "INVALID_DOWNLOAD_LINK", "JOB_NOT_FOUND", "JOB_NOT_CLOSED", "PACKAGE_EXPIRED",
    ),
    "import_create": (
        *_ANSWERED_BY_EVERY_OPERATION, *_JSON, "INVALID_REQUEST", "INVALID_SERVICE_URI", "FOLDER_NOT_FOUND",
        "SERVICE_NOT_FOUND", "SERVICE_EXISTS", "SERVICE_NAME_CONFLICT", "EXCEEDED_FILE_SIZE", "REQUEST_TOO_LARGE",
        "INVALID_IMPORT_ZIP", "MISSING_DEPENDENCY", "IDEMPOTENCY_KEY_REUSED", "JOB_LIMIT_REACHED",
    ),
    "import_status": (*_ANSWERED_BY_EVERY_OPERATION, *_JSON, "JOB_NOT_FOUND"),
    "import_tenant_status": (*_ANSWERED_BY_EVERY_OPERATION, *_JSON),
}

RETRY_AFTER_STATUSES = (429, 503)


class ErrorSerializer(serializers.Serializer):
    """Every error body."""

    type = serializers.CharField(
        help_text="The kind of error: invalid_input, authentication, authorization, not_found, conflict, "
        "rate_limit, unavailable or server_error."
    )
    code = serializers.CharField(
        help_text="Stable; the response's description lists the codes this operation answers with this status."
    )
    message = serializers.CharField(help_text="What was wrong, and how to fix it.")
    details = serializers.JSONField(allow_null=True, help_text="Field errors or the offending references, if any.")


class ErrorItemSerializer(serializers.Serializer):
    """One item of a status document's `errors` or `warnings`."""

    code = serializers.CharField()
    message = serializers.CharField()


def _code_list(codes: dict[str, str]) -> str:
    return "\n".join(f"- `{code}`: {meaning}" for code, meaning in codes.items())


def job_errors_description(kind: str) -> str:
    """The description of a status document's `errors`: which codes a failed job carries."""
    text = "null, or why the job failed, timed out or lost its package:\n" + _code_list(JOB_ERROR_CODES)
    return text + ("\n\n" + IMPORT_JOB_ERRORS if kind == "import" else "")


def warnings_description() -> str:
    return "What an import left out or could not check, though it succeeded:\n" + _code_list(WARNING_CODES)


def operation_error_codes(operation_id: str) -> dict[int, list[str]]:
    """{status: [codes]} that one operation answers, statuses ascending."""
    by_status: dict[int, list[str]] = {}
    for code in OPERATION_ERRORS[operation_id]:
        by_status.setdefault(ERROR_CODES[code][0], []).append(code)
    return dict(sorted(by_status.items()))


def _description(codes: list[str]) -> str:
    return _code_list({code: ERROR_CODES[code][1] for code in codes})


def operation_schema(operation_id: str, *, ok: dict, parameters=(), **kwargs):
    """`extend_schema` for one operation: its success responses, one error response per status
    whose description lists the codes answered with it, and Retry-After where 429 or 503 can be."""
    by_status = operation_error_codes(operation_id)
    retry_after = [status for status in RETRY_AFTER_STATUSES if status in by_status]
    headers = [
        OpenApiParameter(
            "Retry-After", OpenApiTypes.INT, OpenApiParameter.HEADER, response=retry_after,
            description="Seconds to wait before retrying.",
        )
    ] if retry_after else []
    errors = {
        status: OpenApiResponse(ErrorSerializer, description=_description(codes)) for status, codes in by_status.items()
    }
    return extend_schema(
        operation_id=operation_id, parameters=[*parameters, *headers], responses={**ok, **errors}, **kwargs
    )
