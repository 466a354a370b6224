"""One JSON error body for the whole API, whoever raised the error.

Every error is `{"type", "code", "message", "details"}`: `code` is stable, `message` tells
the caller how to fix the request. The domain's errors are in sparkexport/errors.py.
"""
import logging

from django.db import DatabaseError, InterfaceError
from django.http import Http404, JsonResponse
from redis.exceptions import RedisError
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.settings import api_settings

from sparkexport.db_outage import is_database_outage
from sparkexport.errors import ApplicationError, ServiceUnavailable, error_body

logger = logging.getLogger(__name__)


# DRF's own exceptions, mapped to our codes and to messages that say what to do.
_DRF_ERRORS = {
    exceptions.ParseError: (
        "invalid_input",
        "INVALID_REQUEST",
        "The request body is not valid JSON. Send a JSON object with Content-Type: application/json.",
    ),
    exceptions.NotAuthenticated: (
        "authentication",
        "UNAUTHORIZED",
        "Authentication required: send an API key (x-synthetic-key and x-tenant-name headers) "
        "or an OAuth2 bearer token (Authorization: Bearer ...).",
    ),
    exceptions.AuthenticationFailed: ("authentication", "UNAUTHORIZED", None),
    exceptions.PermissionDenied: ("authorization", "FORBIDDEN", None),
    exceptions.NotFound: ("not_found", "NOT_FOUND", None),
    exceptions.MethodNotAllowed: ("invalid_input", "METHOD_NOT_ALLOWED", None),
    exceptions.NotAcceptable: ("invalid_input", "NOT_ACCEPTABLE", None),
    exceptions.UnsupportedMediaType: (
        "invalid_input",
        "INVALID_REQUEST",
        "The request body is not JSON. Send a JSON object with Content-Type: application/json.",
    ),
    exceptions.Throttled: ("rate_limit", "RATE_LIMITED", None),
}


def exception_handler(exc, context):
    """DRF exception handler: every error, ours or DRF's, becomes one JSON body."""
    if isinstance(exc, ApplicationError):
        return Response(exc.body(), status=exc.status_code, headers=exc.headers)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.UnsupportedMediaType):
        # The contract answers every body that is not JSON with 400 INVALID_REQUEST.
        exc.status_code = status.HTTP_400_BAD_REQUEST
    # Only an outage is a 503: any other database error is a fault to fix, a logged 500.
    if isinstance(exc, RedisError) or (isinstance(exc, (DatabaseError, InterfaceError)) and is_database_outage(exc)):
        logger.error("backing service unavailable: %s", exc)
        unavailable = ServiceUnavailable(
            "The database or the job queue is unreachable right now. Retry in a few seconds; "
            "if it persists, tell the operator.",
            headers={"Retry-After": "5"},
        )
        return Response(unavailable.body(), status=unavailable.status_code, headers=unavailable.headers)
    if isinstance(exc, exceptions.ValidationError):
        body = error_body(
            "invalid_input",
            "INVALID_REQUEST",
            "The request body is invalid: " + _first_error(exc.detail),
            exc.detail,
        )
        return Response(body, status=400)
    if isinstance(exc, exceptions.APIException):
        for exc_class, (type_, code, message) in _DRF_ERRORS.items():
            if isinstance(exc, exc_class):
                break
        else:
            type_, code, message = "server_error", "ERROR", None
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        return Response(
            error_body(type_, code, message or str(exc.detail)),
            status=exc.status_code,
            headers=headers,
        )
    return None


def _first_error(detail, path="") -> str:
    """The first field error as 'field: message', so the message says where to look."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            if key == api_settings.NON_FIELD_ERRORS_KEY:
                return _first_error(value, path)
            return _first_error(value, f"{path}.{key}" if path else str(key))
    if isinstance(detail, list) and detail:
        if all(isinstance(item, (str, exceptions.ErrorDetail)) for item in detail):
            return f"{path}: {detail[0]}" if path else str(detail[0])
        for index, item in enumerate(detail):
            if item:
                return _first_error(item, f"{path}[{index}]")
    return f"{path}: {detail}" if path else str(detail)


@csrf_exempt  # a POST to an unknown URL is a 404, not an HTML "CSRF cookie not set" 403
def json_not_found(request, exception=None):
    """handler404: unknown URLs answer JSON, never an HTML page."""
    body = error_body(
        "not_found", "NOT_FOUND", f"No endpoint at {request.path}. See /api/docs/ for the API."
    )
    return JsonResponse(body, status=404)


def json_server_error(request):
    """handler500: a last resort that still answers JSON without a stack trace."""
    body = error_body(
        "server_error",
        "INTERNAL_ERROR",
        "The server failed to complete this request. It has been logged; try again later.",
    )
    return JsonResponse(body, status=500)
