"""The handoff API (docs/api.md: rulesets, handoffs, deals, sale events, source overrides, targets):
rulesets and handoffs here, with what the other resources' modules share (``apis_deals``,
``apis_targets``).

Views parse with a serializer, resolve ids to rows (an unknown id is a 400
naming the field), call one service, and answer with an output serializer.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.contrib.auth.models import User
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from contacts.models import Contact
from leadrecord import api_examples
from leadrecord.api_fields import IdField, IdFilter, OccurredAtField
from leadrecord.errors import InvalidInput
from leadrecord.ledger import Actor
from leadrecord.openapi import RuleErrorResponseSerializer
from leadrecord.pagination import Pagination
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import selectors, services
from .models import (
    BUYER_SIGNAL_CONSENT,
    BUYER_SIGNAL_STAGE,
    NOTE_MAX_LENGTH,
    RULESET_NAME_MAX_LENGTH,
    Handoff,
    HandoffStatus,
    RejectReason,
    Ruleset,
    RulesetStatus,
)

READERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
RulesPermission = roles_allowed(read=READERS, write=[Role.MANAGER])
HandoffCreatePermission = roles_allowed(
    read=(*READERS, Role.INTEGRATION),
    write=(Role.MARKETER, Role.MANAGER, Role.INTEGRATION),
)
HandoffDecidePermission = roles_allowed(write=(Role.SALES_REP, Role.MANAGER))
DealPermission = roles_allowed(
    read=(*READERS, Role.INTEGRATION), write=(Role.SALES_REP, Role.MANAGER, Role.INTEGRATION)
)
OverridePermission = roles_allowed(write=(Role.SALES_REP, Role.MANAGER))

MAX_BUYING_GROUP = 50


def user_or_field_error(user_id: int | None, attr: str) -> User | None:
    if user_id is None:
        return None
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise InvalidInput("does_not_exist", f"No user {user_id}.", attr=attr)
    return user


def contact_or_field_error(contact_id: int, attr: str) -> Contact:
    contact = Contact.objects.filter(pk=contact_id).first()
    if contact is None:
        raise InvalidInput("does_not_exist", f"No contact {contact_id}.", attr=attr)
    return contact


def owner_me(queryset: QuerySet[Any], request: Request, field: str) -> QuerySet[Any]:
    owner = request.query_params.get("owner")
    if owner == "me":
        return queryset.filter(**{field: request.user.pk})
    if owner:
        raise InvalidInput("invalid", "owner takes only 'me'.", attr="owner")
    return queryset


# --- rulesets ---------------------------------------------------------------


class RulesetSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    version = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RulesetStatus.choices)
    points = serializers.DictField(child=serializers.IntegerField())
    mql_threshold = serializers.IntegerField()
    sla_hours = serializers.IntegerField()
    sourcing_window_days = serializers.IntegerField()
    lookback_days = serializers.IntegerField()
    auto_handoff = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    retired_at = serializers.DateTimeField(allow_null=True)


class RulesetInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=RULESET_NAME_MAX_LENGTH)
    points = serializers.DictField(
        help_text='Points per rule: {"channel:webinar": 10, "kind:form": 5, '
        '"disclosure:budget": 15}; whole numbers from -1000 to 1000.'
    )
    mql_threshold = serializers.IntegerField(min_value=1, max_value=1_000_000)
    sla_hours = serializers.IntegerField(min_value=1, max_value=24 * 365)
    sourcing_window_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    lookback_days = serializers.IntegerField(min_value=1, max_value=3650, required=False)
    auto_handoff = serializers.BooleanField(required=False)


@extend_schema_view(get=extend_schema(examples=api_examples.RULESETS_LIST))
class RulesetListCreateApi(ListAPIView):
    """Rulesets, newest version first; a manager creates drafts."""

    permission_classes = [RulesPermission]
    pagination_class = Pagination
    serializer_class = RulesetSerializer
    queryset = Ruleset.objects.none()

    def get_queryset(self) -> QuerySet[Ruleset]:
        return selectors.rulesets_all()

    @extend_schema(
        request=RulesetInputSerializer,
        responses={201: RulesetSerializer},
        examples=api_examples.RULESETS_CREATE,
    )
    def post(self, request: Request) -> Response:
        serializer = RulesetInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        ruleset = services.ruleset_create(actor=Actor.of(request.user), **serializer.validated_data)
        return Response(RulesetSerializer(ruleset).data, status=status.HTTP_201_CREATED)


class RulesetDetailApi(APIView):
    """One ruleset; PATCH changes a draft (an active or retired one is a 409)."""

    permission_classes = [RulesPermission]

    @extend_schema(responses={200: RulesetSerializer}, examples=api_examples.RULESET_DETAIL)
    def get(self, request: Request, pk: int) -> Response:
        return Response(RulesetSerializer(get_object_or_404(Ruleset, pk=pk)).data)

    @extend_schema(
        request=RulesetInputSerializer,
        responses={200: RulesetSerializer},
        examples=api_examples.RULESET_UPDATE,
    )
    def patch(self, request: Request, pk: int) -> Response:
        ruleset = get_object_or_404(Ruleset, pk=pk)
        serializer = RulesetInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        ruleset = services.ruleset_update(
            ruleset=ruleset, changes=dict(serializer.validated_data), actor=Actor.of(request.user)
        )
        return Response(RulesetSerializer(ruleset).data)


class RulesetActivateApi(APIView):
    """Freeze a draft and make it the rules; the active one retires; everyone is rescored."""

    permission_classes = [RulesPermission]

    @extend_schema(
        request=None, responses={200: RulesetSerializer}, examples=api_examples.RULESET_ACTIVATE
    )
    def post(self, request: Request, pk: int) -> Response:
        ruleset = get_object_or_404(Ruleset, pk=pk)
        ruleset = services.ruleset_activate(ruleset=ruleset, actor=Actor.of(request.user))
        return Response(RulesetSerializer(ruleset).data)


# --- handoffs ---------------------------------------------------------------


class HandoffSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    contact = serializers.IntegerField(source="contact_id")
    status = serializers.ChoiceField(choices=HandoffStatus.choices)
    sla_state = serializers.SerializerMethodField()
    ruleset_version = serializers.IntegerField(source="ruleset.version")
    score = serializers.IntegerField()
    buyer_signal = serializers.SerializerMethodField()
    automatic = serializers.BooleanField()
    note = serializers.CharField()
    occurred_at = serializers.DateTimeField()
    recorded_at = serializers.DateTimeField()
    due_at = serializers.DateTimeField()
    assigned_to = serializers.IntegerField(source="assigned_to_id", allow_null=True)
    owner = serializers.IntegerField(source="owner_id", allow_null=True)
    decided_by = serializers.IntegerField(source="decided_by_id", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(help_text="The rejection reason; empty unless rejected.")
    decision_note = serializers.CharField()

    @extend_schema_field(
        serializers.ChoiceField(
            choices=[BUYER_SIGNAL_CONSENT, BUYER_SIGNAL_STAGE],
            allow_null=True,
            help_text="What gave the buyer's say-so; null to a caller who may not see it "
            "(a stage disclosed outside the caller's audience, or since withdrawn).",
        )
    )
    def get_buyer_signal(self, handoff: Handoff) -> str | None:
        request = self.context.get("request")
        return selectors.handoff_say_so_for(getattr(request, "user", None), handoff)

    def get_sla_state(self, handoff: Handoff) -> str:
        """on_time, due_soon or overdue while pending; else the status."""
        return selectors.sla_state(handoff)


class HandoffFilter(django_filters.FilterSet):
    status = django_filters.ChoiceFilter(choices=HandoffStatus.choices)
    contact = IdFilter(field_name="contact_id")

    class Meta:
        model = Handoff
        fields = ["status", "contact"]


@extend_schema_view(get=extend_schema(examples=api_examples.HANDOFFS_LIST))
class HandoffListCreateApi(ListAPIView):
    """Handoffs, oldest due first (``?status=``, ``?contact=``, ``?owner=me``); marketing
    creates them, with the buyer's say-so."""

    permission_classes = [HandoffCreatePermission]
    pagination_class = Pagination
    serializer_class = HandoffSerializer
    filterset_class = HandoffFilter
    queryset = Handoff.objects.none()

    class InputSerializer(serializers.Serializer):
        contact = IdField()
        note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True)
        assigned_to = IdField(required=False, allow_null=True, help_text="A sales rep's user id.")
        occurred_at = OccurredAtField()

    def get_queryset(self) -> QuerySet[Handoff]:
        queryset = selectors.handoffs_visible_to(self.request.user).order_by("due_at", "id")
        return owner_me(queryset, self.request, "owner")

    @extend_schema(
        examples=api_examples.HANDOFFS_CREATE,
        request=InputSerializer,
        responses={
            201: HandoffSerializer,
            409: OpenApiResponse(
                RuleErrorResponseSerializer,
                description="no_buyer_consent, handoff_open, no_active_ruleset, contact_erased",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        handoff = services.handoff_create(
            contact=contact_or_field_error(data["contact"], "contact"),
            actor=Actor.of(request.user),
            note=data.get("note", ""),
            assigned_to=user_or_field_error(data.get("assigned_to"), "assigned_to"),
            occurred_at=data.get("occurred_at"),
        )
        return Response(
            HandoffSerializer(handoff, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class HandoffDetailApi(APIView):
    permission_classes = [HandoffCreatePermission]

    @extend_schema(responses={200: HandoffSerializer}, examples=api_examples.HANDOFF_DETAIL)
    def get(self, request: Request, pk: int) -> Response:
        handoff = get_object_or_404(selectors.handoffs_visible_to(request.user), pk=pk)
        return Response(HandoffSerializer(handoff, context={"request": request}).data)


class HandoffAcceptApi(APIView):
    """A rep takes the person (a manager may name the owning rep)."""

    permission_classes = [HandoffDecidePermission]

    class InputSerializer(serializers.Serializer):
        owner = IdField(required=False, allow_null=True, help_text="Defaults to the caller.")
        occurred_at = OccurredAtField()

    @extend_schema(
        request=InputSerializer,
        responses={200: HandoffSerializer},
        examples=api_examples.HANDOFF_ACCEPT,
    )
    def post(self, request: Request, pk: int) -> Response:
        handoff = get_object_or_404(Handoff, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        handoff = services.handoff_accept(
            handoff=handoff,
            user=request.user,  # type: ignore[arg-type]
            owner=user_or_field_error(serializer.validated_data.get("owner"), "owner"),
            occurred_at=serializer.validated_data.get("occurred_at"),
        )
        return Response(HandoffSerializer(handoff, context={"request": request}).data)


class HandoffRejectApi(APIView):
    """A rep sends the person back to marketing, with a reason."""

    permission_classes = [HandoffDecidePermission]

    class InputSerializer(serializers.Serializer):
        reason = serializers.ChoiceField(choices=RejectReason.choices)
        note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True)
        occurred_at = OccurredAtField()

    @extend_schema(
        request=InputSerializer,
        responses={200: HandoffSerializer},
        examples=api_examples.HANDOFF_REJECT,
    )
    def post(self, request: Request, pk: int) -> Response:
        handoff = get_object_or_404(Handoff, pk=pk)
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        handoff = services.handoff_reject(
            handoff=handoff,
            user=request.user,  # type: ignore[arg-type]
            reason=serializer.validated_data["reason"],
            note=serializer.validated_data.get("note", ""),
            occurred_at=serializer.validated_data.get("occurred_at"),
        )
        return Response(HandoffSerializer(handoff, context={"request": request}).data)
