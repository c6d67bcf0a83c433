"""Errors a service raises when a business rule refuses a write.

Services are shared by API views and pages, so they raise this plain
exception rather than an HTTP one; the API's exception handler turns it into
the standard error body, and page views show ``detail`` as a form error.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from drf_standardized_errors.handler import exception_handler as standardized_exception_handler
from rest_framework.exceptions import APIException
from rest_framework.response import Response


class RuleViolation(Exception):
    """A write refused by a rule. ``status`` is 409 for state conflicts, 400 for bad input."""

    def __init__(
        self, code: str, detail: str, *, attr: str | None = None, status: int = 409
    ) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.attr = attr
        self.status = status


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is larger than this server accepts."
    default_code = "request_too_large"


class _RuleViolationError(APIException):
    def __init__(self, violation: RuleViolation) -> None:
        self.status_code = violation.status
        super().__init__(detail=violation.detail, code=violation.code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE.
        exc = RequestTooLarge()
    if isinstance(exc, RuleViolation):
        if exc.attr:
            body = {
                "type": "validation_error" if exc.status == 400 else "client_error",
                "errors": [{"code": exc.code, "detail": exc.detail, "attr": exc.attr}],
            }
            return Response(body, status=exc.status)
        exc = _RuleViolationError(exc)
    return standardized_exception_handler(exc, context)  # type: ignore[arg-type]
