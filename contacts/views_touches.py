"""The marketer's touch pages: log a touch, campaigns, channels, and CSV imports of touches.

Each view parses its input with a form, checks the role, calls one service or
selector and renders; a service's refusal (a ``DomainError``) is shown on the
form with its status (400 or 409), and nothing was written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from leadrecord.errors import DomainError, error_status, form_error_show
from leadrecord.ledger import Actor
from leadrecord.roles import Role, user_has_role
from leadrecord.tables import csv_response, table_configure, wants_csv
from leadrecord.views_access import role_required

from . import selectors, services, touch_import
from .forms_touches import (
    CampaignForm,
    ChannelForm,
    ContactSearchForm,
    TouchImportStartForm,
    TouchImportUploadForm,
    TouchLogForm,
)
from .lists import TouchFilter, TouchTable
from .models import EMAIL_MAX_LENGTH, ImportJob, ImportStatus, Team, Touch, TouchKind

# Marketing's pages; managers may do all a marketer does, and add channels.
TOUCH_PAGE_ROLES = (Role.MARKETER, Role.MANAGER)
LATEST_TOUCHES = 20  # below the form: enough to see what was just logged
CONTACT_MATCHES = 10  # a search lists a handful; a longer list means: type more
CAMPAIGNS_PER_PAGE = 50
RECENT_IMPORTS = 20
ERRORS_SHOWN = 200  # on a page; the CSV download has every error kept
# A running import's page reloads itself this often (no JavaScript needed).
PROGRESS_REFRESH_SECONDS = 2

_TEAM_LABELS = dict(Team.choices)


# --- logging a touch -----------------------------------------------------------------


@role_required(*TOUCH_PAGE_ROLES)
@require_http_methods(["GET", "POST"])
def touch_log(request: HttpRequest) -> HttpResponse:
    search = ContactSearchForm(request.GET if "q" in request.GET else None)
    matches = []
    if search.is_valid() and search.cleaned_data["q"].strip():
        matches = list(
            selectors.contacts_search(
                selectors.contacts_for(request.user), search.cleaned_data["q"]
            ).order_by("last_name", "first_name", "id")[:CONTACT_MATCHES]
        )
    picked_email = request.GET.get("email", "")[:EMAIL_MAX_LENGTH]
    form = TouchLogForm(
        request.POST if request.method == "POST" else None,
        initial={"contact_email": picked_email},
    )
    status = 400 if search.is_bound and not search.is_valid() else 200
    if form.is_valid():
        contact = form.cleaned_data["contact_email"]
        try:
            _, created = services.touch_record(
                actor=Actor.of(request.user), **form.service_arguments()
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            if created:
                messages.success(request, f"Touch recorded for {contact.display_name}.")
            else:
                messages.info(request, "This form was sent before: the touch is recorded once.")
            return redirect("touches")
    elif form.is_bound:
        status = 400
    latest = (
        selectors.touches_visible()
        .select_related("contact", "campaign", "recorded_by")
        # By when they happened, as the column says (an imported back-dated touch is
        # not "latest"); the touch_time index serves it.
        .order_by("-occurred_at", "-id")[:LATEST_TOUCHES]
    )
    return render(
        request,
        "contacts/touches/log.html",
        {
            "form": form,
            "search": search,
            "matches": matches,
            "searched": search.is_bound and search.is_valid() and bool(search.cleaned_data["q"]),
            "latest": latest,
            "time_zone": settings.TIME_ZONE,
        },
        status=status,
    )


# --- the list of touches ---------------------------------------------------------------


@role_required(*TOUCH_PAGE_ROLES)
@require_GET
def touch_list(request: HttpRequest) -> HttpResponseBase:
    """Every touch of a living person, filtered, sorted and paged; ``?format=csv`` downloads
    the filtered rows."""
    filterset = TouchFilter(request.GET, queryset=selectors.touches_listed(), request=request)
    valid = filterset.is_valid()
    table = TouchTable(filterset.qs if valid else Touch.objects.none())
    if valid and wants_csv(request):
        return csv_response(table_configure(request, table), "touches.csv")
    return render(
        request,
        "contacts/touches/list.html",
        {
            "filter_form": filterset.form,
            "filters_valid": valid,
            "table": table_configure(request, table),
            "section": "list",
        },
        status=200 if valid else 400,
    )


# --- campaigns and channels ------------------------------------------------------------


@role_required(*TOUCH_PAGE_ROLES)
@require_http_methods(["GET", "POST"])
def campaign_list(request: HttpRequest) -> HttpResponse:
    form = CampaignForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            campaign = services.campaign_create(
                actor=Actor.of(request.user), **form.service_arguments()
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, f"Campaign {campaign.name} added.")
            return redirect("campaigns")
    elif form.is_bound:
        status = 400
    page = Paginator(selectors.campaigns_all(), CAMPAIGNS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "contacts/touches/campaigns.html",
        {"form": form, "page": page, "currency": settings.LEADRECORD_CURRENCY},
        status=status,
    )


@role_required(*TOUCH_PAGE_ROLES)
@require_http_methods(["GET", "POST"])
def channel_list(request: HttpRequest) -> HttpResponse:
    """Every role here reads the channels; only a manager adds one."""
    can_add = user_has_role(request.user, Role.MANAGER)
    if request.method == "POST" and not can_add:
        raise PermissionDenied
    form = ChannelForm(request.POST if request.method == "POST" else None) if can_add else None
    status = 200
    if form is not None and form.is_valid():
        try:
            channel = services.channel_create(
                key=form.cleaned_data["key"],
                team=form.cleaned_data["team"],
                actor=Actor.of(request.user),
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, f"Channel {channel.key} added.")
            return redirect("channels")
    elif form is not None and form.is_bound:
        status = 400
    channels = [
        (channel, _TEAM_LABELS.get(channel.team, channel.team))
        for channel in selectors.channels_all()
    ]
    return render(
        request,
        "contacts/touches/channels.html",
        {"form": form, "channels": channels},
        status=status,
    )


# --- importing a CSV file --------------------------------------------------------------


@dataclass(frozen=True)
class ReportLine:
    label: str
    count: int
    rows: str


def _job_for(request: HttpRequest, pk: int, *, with_content: bool = False) -> ImportJob:
    jobs = touch_import.import_jobs_for(request.user)
    if with_content:
        jobs = jobs.defer(None)
    return get_object_or_404(jobs, pk=pk)


@role_required(*TOUCH_PAGE_ROLES)
@require_http_methods(["GET", "POST"])
def touch_import_upload(request: HttpRequest) -> HttpResponse:
    last = touch_import.import_choices_last(request.user)
    initial: dict[str, str] = {}
    if last is not None:
        # The user's mapping and zone of their latest import: the next export from the
        # same system has the same columns.
        initial = {f"column_{column}": header for column, header in last.column_map.items()}
        initial["time_zone"] = last.time_zone
    form = TouchImportUploadForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        initial=initial,
    )
    status = 200
    if form.is_valid():
        upload = form.cleaned_data["file"]
        try:
            job = touch_import.touch_import_upload(
                file_name=upload.name or "",
                raw=upload.read(),
                user=request.user,
                column_map=form.column_map(),
                time_zone=form.cleaned_data["time_zone"],
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            return redirect("touch-import-job", pk=job.pk)
    elif form.is_bound:
        status = 400
    return render(
        request,
        "contacts/import/upload.html",
        {
            "form": form,
            "jobs": touch_import.import_jobs_for(request.user)[:RECENT_IMPORTS],
            "required_columns": touch_import.REQUIRED_COLUMNS,
            "optional_columns": touch_import.OPTIONAL_COLUMNS,
            "kinds": TouchKind.choices,
            "channels": selectors.channels_all().filter(active=True),
        },
        status=status,
    )


# One row per kind of value a file may hold: a template people fill in or compare with
# their export. The second row shows a time without an offset (read in the chosen zone).
TEMPLATE_ROWS = (
    ("ada@example.com", "webinar", "Webinar attended", "2026-05-01T09:30:00+02:00", "", "", ""),
    ("grace@example.com", "email", "email_click", "2026-05-02 14:00", "", "crm-42", "hubspot"),
)


@role_required(*TOUCH_PAGE_ROLES)
@require_GET
def touch_import_template(request: HttpRequest) -> HttpResponse:
    """A CSV file with the import's columns and two example rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(touch_import.KNOWN_COLUMNS)
    writer.writerows(TEMPLATE_ROWS)
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = 'attachment; filename="touches-template.csv"'
    return response


def _preview(
    request: HttpRequest, job: ImportJob, form: TouchImportStartForm, status: int = 200
) -> HttpResponse:
    errors = job.errors
    preview = touch_import.import_preview(job)
    return render(
        request,
        "contacts/import/preview.html",
        {
            "job": job,
            "form": form,
            "preview": preview,
            "preview_rows": (
                [
                    (row.number, [row.cells.get(name, "") for name in preview.columns], found)
                    for row, found in preview.rows
                ]
                if preview
                else []
            ),
            "valid_rows": job.total - job.rejected,
            "errors": errors[:ERRORS_SHOWN],
            "errors_hidden": max(len(errors) - ERRORS_SHOWN, 0),
            "errors_capped": len(errors) >= touch_import.MAX_ERRORS_KEPT,
            "same_file_before": touch_import.import_same_file_before(job),
            "can_start": job.created_by_id == request.user.pk,
        },
        status=status,
    )


def _job_page(
    request: HttpRequest, job: ImportJob, *, status: int = 200, error: str = ""
) -> HttpResponse:
    report = job.row_report or {}
    lines = [
        ReportLine(label, sum(last - first + 1 for first, last in report.get(key, [])), text)
        for key, label in (
            ("created", "Imported"),
            ("duplicate", "Already on record (not imported again)"),
            ("rejected", "Not imported (errors)"),
        )
        if (text := touch_import.row_ranges_text(report.get(key, [])))
    ]
    errors = job.errors
    return render(
        request,
        "contacts/import/job.html",
        {
            "job": job,
            "error": error,
            "running": not job.is_finished,
            "refresh_seconds": PROGRESS_REFRESH_SECONDS,
            "lines": lines,
            "errors": errors[:ERRORS_SHOWN],
            "errors_hidden": max(len(errors) - ERRORS_SHOWN, 0),
            "errors_capped": len(errors) >= touch_import.MAX_ERRORS_KEPT,
        },
        status=status,
    )


@role_required(*TOUCH_PAGE_ROLES)
@require_GET
def touch_import_job(request: HttpRequest, pk: int) -> HttpResponse:
    """An uploaded file's preview until it is started; then its progress and report."""
    job = _job_for(request, pk, with_content=True)
    if job.status == ImportStatus.UPLOADED:
        return _preview(request, job, TouchImportStartForm())
    return _job_page(request, job)


@role_required(*TOUCH_PAGE_ROLES)
@require_POST
def touch_import_start(request: HttpRequest, pk: int) -> HttpResponse:
    job = _job_for(request, pk, with_content=True)
    if job.created_by_id != request.user.pk:
        raise PermissionDenied  # the touches are recorded as the uploader's
    form = TouchImportStartForm(request.POST)
    if not form.is_valid():
        if job.status != ImportStatus.UPLOADED:
            return _job_page(request, job, status=409, error="This import has already started.")
        return _preview(request, job, form, status=400)
    try:
        touch_import.touch_import_start(
            job=job, mode=form.cleaned_data["mode"], actor=Actor.of(request.user)
        )
    except DomainError as violation:
        job.refresh_from_db()
        if job.status != ImportStatus.UPLOADED:
            # Sent twice (a double click): the page of the import already under way.
            return _job_page(request, job, status=error_status(violation), error=violation.detail)
        status = form_error_show(form, violation)
        return _preview(request, job, form, status=status)
    return redirect("touch-import-job", pk=job.pk)


# What a spreadsheet would run as a formula; such cells are written with a
# leading apostrophe so the download opens as text.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _safe_cell(value: object) -> str:
    text = str(value)
    return f"'{text}" if text.startswith(_FORMULA_PREFIXES) else text


@role_required(*TOUCH_PAGE_ROLES)
@require_GET
def touch_import_errors(request: HttpRequest, pk: int) -> HttpResponse:
    """Every error kept for the job, as CSV: row, field, message."""
    job = _job_for(request, pk)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["row", "field", "message"])
    for error in job.errors:
        writer.writerow([error["row"], _safe_cell(error["field"]), _safe_cell(error["message"])])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response
