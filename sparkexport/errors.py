"""The domain's errors: what services, selectors and commands raise when a request cannot be
done, each with a stable code, an HTTP status and a message that says how to fix it.

The API answers them as `{"type", "code", "message", "details"}` (sparkexport/api/errors.py);
management commands print the code and the message.
"""
from http import HTTPStatus


class ApplicationError(Exception):
    """An error a service raises for the API to answer as JSON."""

    status_code = HTTPStatus.BAD_REQUEST
    type = "invalid_input"
    code = "INVALID_REQUEST"

    def __init__(self, message: str, *, code: str | None = None, details=None, headers=None):
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers or {}
        if code:
            self.code = code

    def body(self) -> dict:
        return error_body(self.type, self.code, self.message, self.details)


class InvalidRequest(ApplicationError):
    code = "INVALID_REQUEST"


class InvalidServiceUri(ApplicationError):
    code = "INVALID_SERVICE_URI"


class NotFound(ApplicationError):
    status_code = HTTPStatus.NOT_FOUND
    type = "not_found"
    code = "NOT_FOUND"


class Unprocessable(ApplicationError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY


class Conflict(ApplicationError):
    status_code = HTTPStatus.CONFLICT
    type = "conflict"


class PayloadTooLarge(ApplicationError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    code = "EXCEEDED_FILE_SIZE"


class PackageExpired(ApplicationError):
    status_code = HTTPStatus.GONE
    type = "not_found"
    code = "PACKAGE_EXPIRED"


class JobLimitReached(ApplicationError):
    status_code = HTTPStatus.TOO_MANY_REQUESTS
    type = "rate_limit"
    code = "JOB_LIMIT_REACHED"


class ServiceUnavailable(ApplicationError):
    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    type = "unavailable"
    code = "SERVICE_UNAVAILABLE"


class Forbidden(ApplicationError):
    status_code = HTTPStatus.FORBIDDEN
    type = "authorization"
    code = "FORBIDDEN"


def error_body(type_: str, code: str, message: str, details=None) -> dict:
    return {"type": type_, "code": code, "message": message, "details": details}
