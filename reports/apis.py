"""Attribution runs and the attribution report (docs/api.md: attribution/runs/ and
reports/attribution/).

Report dates are whole days in the reporting time zone (``LEADRECORD_TIME_ZONE``),
``from`` and ``to`` both included.
"""

from __future__ import annotations

from typing import Any

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from leadrecord import api_examples
from leadrecord.api_fields import DayField
from leadrecord.dispatch import task_send_on_commit
from leadrecord.errors import Conflict
from leadrecord.openapi import RuleErrorResponseSerializer
from leadrecord.permissions import roles_allowed
from leadrecord.roles import Role

from . import selectors
from .freshness import changes_since
from .models import AttributionModel, AttributionRun, RunStatus
from .runs import run_request
from .tasks import attribution_run_task

READERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
RunPermission = roles_allowed(read=READERS, write=[Role.MANAGER])
ReportPermission = roles_allowed(read=READERS)


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=RunStatus.choices)
    trigger = serializers.CharField()
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    conversions = serializers.IntegerField()
    touches = serializers.IntegerField()
    models = serializers.ListField(child=serializers.CharField(), source="model_names")
    models_unavailable = serializers.DictField(
        child=serializers.CharField(),
        help_text="Per model the run could not compute, why (its reports answer 409).",
    )
    unallocated = serializers.DictField(
        child=serializers.DictField(child=serializers.FloatField()),
        help_text="Per model, per channel id, the credit no converting path can carry "
        "(shown as the unallocated line of its reports).",
    )
    ruleset_version = serializers.IntegerField(allow_null=True)
    lookback_days = serializers.IntegerField(allow_null=True)
    input_digest = serializers.CharField()
    error = serializers.CharField()


class RunCreateApi(APIView):
    """Queue an attribution run (or answer the one already queued or running)."""

    permission_classes = [RunPermission]

    @extend_schema(request=None, responses={202: RunSerializer}, examples=api_examples.RUN_CREATE)
    def post(self, request: Request) -> Response:
        run, _ = run_request(user=request.user, trigger="api")  # type: ignore[arg-type]
        if run.status in (RunStatus.QUEUED, RunStatus.RUNNING):
            # Also for a run whose task never reached a worker (the broker was down) or
            # whose worker died: a second delivery waits out a live run (the lock) and
            # replaces a dead one; a finished run is left alone.
            task_send_on_commit(attribution_run_task, run.pk)
        run.refresh_from_db()
        return Response(RunSerializer(run).data, status=status.HTTP_202_ACCEPTED)


class RunDetailApi(APIView):
    permission_classes = [RunPermission]

    @extend_schema(responses={200: RunSerializer}, examples=api_examples.RUN_DETAIL)
    def get(self, request: Request, pk: int) -> Response:
        return Response(RunSerializer(get_object_or_404(AttributionRun, pk=pk)).data)


class DateRangeSerializer(serializers.Serializer):
    # ``from`` is a keyword in Python: the field is declared below under its real name.
    to = DayField(required=False, help_text="Last day, included.")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = DayField(required=False, help_text="First day, included.")
        return fields

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        start, end = attrs.get("from"), attrs.get("to")
        if start and end and start > end:
            raise serializers.ValidationError({"to": ["'to' comes before 'from'."]}, code="invalid")
        return attrs


class AttributionQuerySerializer(DateRangeSerializer):
    model = serializers.ChoiceField(
        choices=AttributionModel.choices, default=AttributionModel.LINEAR
    )
    group_by = serializers.ChoiceField(choices=selectors.GROUPINGS, default="channel")


class CreditRowSerializer(serializers.Serializer):
    key = serializers.CharField()
    credit = serializers.FloatField()
    conversions = serializers.FloatField()


class RunMarkSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    finished_at = serializers.DateTimeField()


class AttributionReportSerializer(serializers.Serializer):
    run = RunMarkSerializer(allow_null=True, help_text="The complete run read from.")
    model = serializers.CharField()
    group_by = serializers.CharField()
    changes_since = serializers.IntegerField(
        allow_null=True,
        help_text="Changes to the record that can move a credit (sales, touches, buying groups, "
        "ruleset activations, analytics consent, merges, erasures) recorded since the run "
        "read it; a run follows within minutes. Null without a run.",
    )
    rows = CreditRowSerializer(many=True)


class AttributionReportApi(APIView):
    """Credit by channel, campaign or team for one model, from the latest complete run."""

    permission_classes = [ReportPermission]

    @extend_schema(
        examples=api_examples.REPORT_ATTRIBUTION,
        parameters=[
            OpenApiParameter("model", str, enum=AttributionModel.values),
            OpenApiParameter("group_by", str, enum=list(selectors.GROUPINGS)),
            OpenApiParameter("from", str, description="YYYY-MM-DD, included"),
            OpenApiParameter("to", str, description="YYYY-MM-DD, included"),
        ],
        responses={
            200: AttributionReportSerializer,
            400: OpenApiResponse(RuleErrorResponseSerializer, description="Bad query"),
            409: OpenApiResponse(
                RuleErrorResponseSerializer,
                description="model_unavailable: the latest complete run could not compute "
                "the model; the detail says why.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        query = AttributionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        run = selectors.run_latest_complete()
        if run is not None:
            reason = selectors.model_unavailable_reason(run, params["model"])
            if reason:
                raise Conflict("model_unavailable", reason, attr="model")
        rows = (
            selectors.attribution_rows(
                run,
                model=params["model"],
                group_by=params["group_by"],
                start=params.get("from"),
                end=params.get("to"),
            )
            if run
            else []
        )
        return Response(
            AttributionReportSerializer(
                {
                    "run": {"id": run.pk, "finished_at": run.finished_at} if run else None,
                    "model": params["model"],
                    "group_by": params["group_by"],
                    "changes_since": changes_since(run) if run else None,
                    "rows": rows,
                }
            ).data
        )
