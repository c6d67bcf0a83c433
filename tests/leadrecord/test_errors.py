"""Domain errors: what each means over HTTP and on pages."""

import pytest
from rest_framework.test import APIRequestFactory

from leadrecord.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Unprocessable,
    api_exception_handler,
    error_status,
)


@pytest.mark.parametrize(
    ("error", "status"),
    [(InvalidInput, 400), (Forbidden, 403), (NotFound, 404), (Conflict, 409)],
)
def test_each_domain_error_answers_with_its_status(error, status):
    assert error_status(error("code", "detail")) == status


def test_a_reused_idempotency_key_is_unprocessable():
    assert error_status(Unprocessable("idempotency_key_reused", "Reused.")) == 422


def _answer(error: Exception) -> tuple[int, object]:
    request = APIRequestFactory().post("/api/v1/anything/")
    response = api_exception_handler(error, {"request": request, "view": None})
    assert response is not None
    return response.status_code, response.data


def test_a_refused_field_is_a_validation_error_naming_it():
    assert _answer(InvalidInput("invalid", "Bad value.", attr="points")) == (
        400,
        {
            "type": "validation_error",
            "errors": [{"code": "invalid", "detail": "Bad value.", "attr": "points"}],
        },
    )
    assert _answer(Conflict("already_won", "Won.", attr="kind")) == (
        409,
        {
            "type": "client_error",
            "errors": [{"code": "already_won", "detail": "Won.", "attr": "kind"}],
        },
    )


def test_a_refusal_without_a_field_is_a_client_error():
    status, body = _answer(Forbidden("not_your_handoff", "Another rep's."))
    assert status == 403
    assert body == {
        "type": "client_error",
        "errors": [{"code": "not_your_handoff", "detail": "Another rep's.", "attr": None}],
    }
