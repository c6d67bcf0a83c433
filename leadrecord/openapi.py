"""OpenAPI schema generation (drf-spectacular with drf-standardized-errors)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema
from rest_framework import serializers

# Writes a service may refuse (a DomainError: 409, or 400 with a field), or a
# body too large to read (413); documented on every unsafe operation.
_WRITE_ERROR_STATUS_CODES = ("409", "413")
_SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """``Authorization: Token <key>`` (knox's extension matches only knox's own class)."""

    target_class = "leadrecord.authentication.ApiTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        scheme: dict[str, Any] = build_bearer_security_scheme_object(
            header_name="Authorization",
            token_prefix="Token",  # noqa: S106 -- the scheme's keyword, not a secret
        )
        scheme["description"] = (
            "`Authorization: Token <key>`. `manage.py issue_token NAME` prints a new key, "
            "once; it expires after API_TOKEN_TTL_DAYS (90 by default), and `--rotate` "
            "revokes the user's other keys. Each token has a sustained and a burst rate "
            "limit; over one, 429 with Retry-After."
        )
        return scheme


class RuleErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    detail = serializers.CharField()
    attr = serializers.CharField(allow_null=True)


class RuleErrorResponseSerializer(serializers.Serializer):
    """A write refused: by a field's check or by a business rule, whose code names it
    (``no_buyer_consent``, ``unique``, ...); ``attr`` names the field when there is one."""

    type = serializers.ChoiceField(choices=["validation_error", "client_error"])
    errors = RuleErrorSerializer(many=True)  # type: ignore[assignment]


class AutoSchema(StandardizedErrorsAutoSchema):
    """Names nested ``InputSerializer``/``OutputSerializer`` after their view.

    Views keep their serializers as nested classes (one view per operation),
    so ``ContactDetailApi.OutputSerializer`` becomes ``ContactDetailOutput``
    instead of colliding with every other ``Output``.

    Error responses are documented as drf-standardized-errors does for its own
    handler: the project's handler (``leadrecord.errors.api_exception_handler``)
    hands everything to it after turning rule violations into API errors.
    """

    def get_serializer_name(self, serializer: Any, direction: str) -> str:
        cls = serializer.__class__
        outer, _, inner = cls.__qualname__.rpartition(".")
        if not outer:
            return str(cls.__name__)
        outer = outer.split(".")[-1]
        for suffix in ("View", "Api"):
            outer = outer.removesuffix(suffix)
        return outer + inner

    def _view_error_status_codes(self) -> tuple[str, ...]:
        """Codes a view names itself (``schema_error_status_codes``), e.g. 410 for an
        erased contact."""
        return tuple(str(code) for code in getattr(self.view, "schema_error_status_codes", ()))

    def _get_allowed_error_status_codes(self) -> list[str]:
        return [
            *super()._get_allowed_error_status_codes(),
            *_WRITE_ERROR_STATUS_CODES,
            *self._view_error_status_codes(),
        ]

    def _should_add_error_response(self, responses: dict, status_code: str) -> bool:
        if status_code in responses:
            return False
        if status_code in self._view_error_status_codes():
            return True
        if status_code in _WRITE_ERROR_STATUS_CODES:
            return self.method not in _SAFE_METHODS
        checks = {
            "400": lambda: (
                self._should_add_parse_error_response()
                or self._should_add_validation_error_response()
            ),
            "401": self._should_add_http401_error_response,
            "403": self._should_add_http403_error_response,
            "404": self._should_add_http404_error_response,
            "405": self._should_add_http405_error_response,
            "406": self._should_add_http406_error_response,
            "415": self._should_add_http415_error_response,
            "429": self._should_add_http429_error_response,
            "500": self._should_add_http500_error_response,
        }
        check = checks.get(status_code)
        return bool(check()) if check else True

    def _get_error_response_serializer(self, status_code: str) -> Any:
        # A write's 400 may come from a service (InvalidInput with a field) as
        # well as from the serializer, so its codes are not a closed list.
        writes = self.method not in _SAFE_METHODS
        if (
            status_code in _WRITE_ERROR_STATUS_CODES
            or status_code in self._view_error_status_codes()
            or (status_code == "400" and writes)
        ):
            return RuleErrorResponseSerializer
        return super()._get_error_response_serializer(status_code)
