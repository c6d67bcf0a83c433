"""Errors a service raises when a business rule refuses a write, and where they turn into answers.

Services are shared by API views and pages, so they raise domain errors that
say what went wrong (the input is invalid, the record's state conflicts, the
actor may not, the thing is not there) and nothing about HTTP. Two places
translate them: ``api_exception_handler`` into the API's standard error body,
and ``form_error_show``/``error_status`` into a page's form error and status.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import RequestDataTooBig
from drf_standardized_errors.handler import exception_handler as standardized_exception_handler
from rest_framework.exceptions import APIException
from rest_framework.response import Response


class DomainError(Exception):
    """A write refused by a rule: a stable ``code``, a readable ``detail``, the field (``attr``)."""

    def __init__(self, code: str, detail: str, *, attr: str | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.attr = attr


class InvalidInput(DomainError):
    """The input itself is wrong (a value out of range, an unknown field, a bad format)."""


class Conflict(DomainError):
    """The input is fine but the record's state refuses it (already decided, frozen, erased)."""


class Forbidden(DomainError):
    """The actor may not do this to this record (another rep's handoff)."""


class NotFound(DomainError):
    """The record the input names does not exist."""


class Unprocessable(DomainError):
    """Well-formed input that cannot be taken as it is (an idempotency key reused for another
    body)."""


# The one mapping of domain errors to HTTP, for the API and the pages alike.
_STATUS_OF: tuple[tuple[type[DomainError], int], ...] = (
    (InvalidInput, 400),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unprocessable, 422),
)


def error_status(error: DomainError) -> int:
    """The HTTP status that answers ``error``, on a page or in the API."""
    for kind, status in _STATUS_OF:
        if isinstance(error, kind):
            return status
    return 409


def form_error_show(form: forms.BaseForm, error: DomainError) -> int:
    """Show a service's refusal on the form (on its field when it names one); the HTTP status."""
    field = error.attr if error.attr in form.fields else None
    form.add_error(field, error.detail)
    return error_status(error)


class RequestTooLarge(APIException):
    status_code = 413
    default_detail = "The request body is larger than this server accepts."
    default_code = "request_too_large"


class _DomainAPIError(APIException):
    def __init__(self, error: DomainError) -> None:
        self.status_code = error_status(error)
        super().__init__(detail=error.detail, code=error.code)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, RequestDataTooBig):
        # Django refuses to read a body over DATA_UPLOAD_MAX_MEMORY_SIZE.
        exc = RequestTooLarge()
    if isinstance(exc, DomainError):
        status = error_status(exc)
        if exc.attr:
            body = {
                "type": "validation_error" if status == 400 else "client_error",
                "errors": [{"code": exc.code, "detail": exc.detail, "attr": exc.attr}],
            }
            return Response(body, status=status)
        exc = _DomainAPIError(exc)
    return standardized_exception_handler(exc, context)  # type: ignore[arg-type]
