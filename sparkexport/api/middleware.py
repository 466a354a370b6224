"""Every answer under /{tenant}/api/ and /auth/ is JSON in the API's error shape, including the
ones Django gives before (or instead of) a view: a Host not in ALLOWED_HOSTS, a body over
DATA_UPLOAD_MAX_MEMORY_SIZE, a form with too many fields, a view's bare 405 (the token endpoint).
With DEBUG on too, where Django would answer these with its HTML debug pages."""
import re

from django.conf import settings
from django.core.exceptions import DisallowedHost, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse

from sparkexport.errors import PayloadTooLarge, error_body

API_PATH = re.compile(r"/(?:[^/]+/api/|auth/)")

# The code and type of an error response that came without a JSON body, by status.
_BY_STATUS = {
    400: ("invalid_input", "INVALID_REQUEST", "The request is malformed."),
    401: ("authentication", "UNAUTHORIZED", "Authentication required."),
    403: ("authorization", "FORBIDDEN", "The request was refused."),
    404: ("not_found", "NOT_FOUND", "No endpoint at this path."),
    405: ("invalid_input", "METHOD_NOT_ALLOWED", "The endpoint does not take this HTTP method."),
    413: ("invalid_input", "REQUEST_TOO_LARGE", "The request is too large."),
}


def too_large_error(what: str, limit: int) -> PayloadTooLarge:
    """413 REQUEST_TOO_LARGE, saying the limit."""
    return PayloadTooLarge(
        f"{what} is larger than the limit of {limit} bytes. Send less per request.",
        code="REQUEST_TOO_LARGE", details={"limit_bytes": limit},
    )


def _invalid(message: str) -> JsonResponse:
    return JsonResponse(error_body("invalid_input", "INVALID_REQUEST", message), status=400)


class ApiErrorsMiddleware:
    """JSON errors for the API's paths, whatever raised them."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not API_PATH.match(request.path_info):
            return self.get_response(request)
        try:
            request.get_host()
        except DisallowedHost:
            return _invalid(
                "The Host header names a host this server does not answer to (ALLOWED_HOSTS): "
                "call the API by the address the operator published."
            )
        return _as_json(self.get_response(request))

    def process_exception(self, request, exception):
        if not API_PATH.match(request.path_info):
            return None
        if isinstance(exception, RequestDataTooBig):
            error = too_large_error("The request body", settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
            return JsonResponse(error.body(), status=error.status_code)
        if isinstance(exception, TooManyFieldsSent):
            return _invalid(
                f"The form has too many fields (at most {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS}): send "
                "only importRequestEntity and file."
            )
        if isinstance(exception, TooManyFilesSent):
            return _invalid(
                f"The form has too many files (at most {settings.DATA_UPLOAD_MAX_NUMBER_FILES}): send one file part."
            )
        return None


def _as_json(response):
    """An error response without a JSON body becomes one in the error shape; its headers stay."""
    if response.status_code < 400 or response.get("Content-Type", "").startswith("application/json"):
        return response
    type_, code, message = _BY_STATUS.get(
        response.status_code, ("server_error", "INTERNAL_ERROR", "The server failed to complete this request.")
    )
    if response.status_code == 405 and response.has_header("Allow"):
        message = f"The endpoint does not take this HTTP method; it takes {response['Allow']}."
    replacement = JsonResponse(error_body(type_, code, message), status=response.status_code)
    for header, value in response.items():
        if header.lower() not in ("content-type", "content-length"):
            replacement[header] = value
    return replacement
