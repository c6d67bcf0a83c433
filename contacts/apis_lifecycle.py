"""The contacts API's merge, erasure and subject access export of a person
(docs/api.md: merge, erase)."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord import api_examples
from leadrecord.api_fields import IdField
from leadrecord.ledger import Actor

from . import services
from .apis import (
    ContactDetailSerializer,
    MergePermission,
    PrivacyOfficerPermission,
    contact_detail_data,
    contact_for_request,
    living_contact_or_field_error,
)


class ContactMergeApi(APIView):
    """Merge one contact into another; the merged one's records move to the kept one."""

    permission_classes = [MergePermission]

    class InputSerializer(serializers.Serializer):
        keep = IdField()
        merge = IdField()
        reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    @extend_schema(
        request=InputSerializer,
        responses=ContactDetailSerializer,
        examples=api_examples.CONTACT_MERGE,
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        if data["keep"] == data["merge"]:
            raise serializers.ValidationError(
                {"merge": ["A contact cannot be merged into itself."]}, code="merge_into_self"
            )
        keep = living_contact_or_field_error(request, data["keep"], "keep")
        merge = living_contact_or_field_error(request, data["merge"], "merge")
        kept = services.contact_merge(
            keep=keep, merge=merge, actor=Actor.of(request.user), reason=data.get("reason", "")
        )
        return Response(contact_detail_data(request, kept))


class ContactEraseApi(APIView):
    """Erase the person (privacy officer): personal data gone everywhere, counts kept."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [PrivacyOfficerPermission]

    class InputSerializer(serializers.Serializer):
        reason = serializers.CharField(max_length=1000, required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        erased_at = serializers.DateTimeField()

    @extend_schema(
        request=InputSerializer, responses=OutputSerializer, examples=api_examples.CONTACT_ERASE
    )
    def post(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        erased = services.contact_erase(
            contact=contact,
            actor=Actor.of(request.user),
            reason=serializer.validated_data.get("reason", ""),
        )
        return Response(self.OutputSerializer(erased).data)


class ContactExportApi(APIView):
    """The subject-access export (privacy officer): everything held about the person."""

    # contact_for_request: an erased contact is 410 Gone.
    schema_error_status_codes = (410,)
    permission_classes = [PrivacyOfficerPermission]

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, examples=api_examples.CONTACT_EXPORT)
    def get(self, request: Request, pk: int) -> Response:
        contact = contact_for_request(request, pk)
        data = services.contact_subject_access_export(contact=contact, actor=Actor.of(request.user))
        return Response(data)
