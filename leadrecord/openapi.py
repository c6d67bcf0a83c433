"""OpenAPI schema generation (drf-spectacular with drf-standardized-errors)."""

from typing import Any

from drf_standardized_errors.openapi import AutoSchema as StandardizedErrorsAutoSchema


class AutoSchema(StandardizedErrorsAutoSchema):
    """Names nested ``InputSerializer``/``OutputSerializer`` after their view.

    Views keep their serializers as nested classes (one view per operation),
    so ``ContactDetailApi.OutputSerializer`` becomes ``ContactDetailOutput``
    instead of colliding with every other ``Output``.
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
