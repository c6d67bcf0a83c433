"""The contact pages: each parses its input with a form, checks the role, calls a service or
selector, and renders. Disclosures are read only through ``contacts.selectors``.

A service's refusal (a ``DomainError``) is shown on the form and the page is
rendered again with the violation's status (400 or 409); nothing was written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from leadrecord.errors import DomainError, error_status, form_error_show
from leadrecord.ledger import Actor
from leadrecord.roles import Role, user_has_role
from leadrecord.views_access import role_required

from . import selectors, services
from .forms import (
    DISCLOSURE_KEY_SUGGESTIONS,
    ERASE_WORD,
    ConsentForm,
    ContactCreateForm,
    ContactEraseForm,
    ContactMergeForm,
    DisclosureForm,
    OrganizationMoveForm,
)
from .models import ConsentPurpose, Contact, JourneyStage

# Who may change contacts from the pages. The privacy officer reads, exports
# and erases, but does not record on people's behalf.
CONTACT_PAGE_WRITERS = (Role.MARKETER, Role.SALES_REP, Role.MANAGER)
PER_PAGE = 50  # rows per page on the list and the timeline

ContactView = Callable[[HttpRequest, Contact], HttpResponse]
PkView = Callable[[HttpRequest, int], HttpResponse]

_STAGE_LABELS = dict(JourneyStage.choices)
_CONSENT_PURPOSE_LABELS = dict(ConsentPurpose.choices)


def _with_contact(view: ContactView, *, tombstone: bool = False) -> PkView:
    """Resolve ``pk`` to a living contact the user may see, else 404.

    A contact merged into another sends the user on to the survivor, with a note. With
    ``tombstone``, an erased contact's address shows that the person was erased (410).
    """

    @wraps(view)
    def wrapped(request: HttpRequest, pk: int) -> HttpResponse:
        contact = selectors.contacts_for(request.user).filter(pk=pk).first()
        if contact is not None:
            return view(request, contact)
        erased_at = selectors.contact_erased_at(pk) if tombstone else None
        if erased_at is not None:
            return render(
                request,
                "contacts/erased.html",
                {
                    "pk": pk,
                    "erased_at": erased_at,
                    "can_read_record": user_has_role(
                        request.user, Role.MANAGER, Role.PRIVACY_OFFICER
                    ),
                },
                status=410,
            )
        # The same lookup as the API's contact_for_request: a merged contact
        # names the one it went into.
        survivor = (
            Contact.objects.filter(pk=pk, erased_at__isnull=True)
            .values_list("merged_into_id", flat=True)
            .first()
        )
        if survivor is None:
            raise Http404("No such contact.")
        messages.info(request, "The contact you opened was merged into this one.")
        return redirect("contact", pk=survivor)

    return wrapped


def _query_without_page(request: HttpRequest) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


def _page(request: HttpRequest, items: Any) -> Page[Any]:
    return Paginator(items, PER_PAGE).get_page(request.GET.get("page"))


def _can_write(request: HttpRequest) -> bool:
    return user_has_role(request.user, *CONTACT_PAGE_WRITERS)


# --- list and detail -------------------------------------------------------------


@dataclass(frozen=True)
class ConsentRow:
    purpose: str
    state: selectors.ConsentState


def _with_contact_or_tombstone(view: ContactView) -> PkView:
    return _with_contact(view, tombstone=True)


@role_required(*selectors.CONTACT_PAGE_ROLES)
@require_GET
@_with_contact_or_tombstone
def contact_detail(request: HttpRequest, contact: Contact) -> HttpResponse:
    page = _page(request, selectors.contact_timeline_entries(contact, request.user))
    can_write = _can_write(request)
    return render(
        request,
        "contacts/detail.html",
        {
            "contact": contact,
            "stage": _STAGE_LABELS.get(getattr(contact, "journey_stage", None) or "", ""),
            "consents": [
                ConsentRow(_CONSENT_PURPOSE_LABELS.get(state.purpose, state.purpose), state)
                for state in selectors.consents_current(contact)
            ],
            "disclosures": selectors.contact_disclosures_for(request.user, contact),
            "page": page,
            "timeline": selectors.timeline_items(request.user, list(page.object_list)),
            "query": _query_without_page(request),
            "can_write": can_write,
            "is_privacy_officer": user_has_role(request.user, Role.PRIVACY_OFFICER),
            "merge_form": ContactMergeForm(keep=contact, user=request.user) if can_write else None,
            # The handoff app's part of the page: handing off, and the person's handoffs
            # (the template's ``contact_handoffs`` tag, from that app).
            "can_hand_off": user_has_role(request.user, Role.MARKETER, Role.MANAGER),
        },
    )


# --- writes ----------------------------------------------------------------------


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
def contact_new(request: HttpRequest) -> HttpResponse:
    form = ContactCreateForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        try:
            contact, created = services.contact_create(
                email=data["email"],
                first_name=data["first_name"],
                last_name=data["last_name"],
                title=data["title"],
                organization=form.organization_input(),
                actor=Actor.of(request.user),
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            if created:
                messages.success(request, "Contact added.")
            else:
                messages.info(request, "This email is already on record: here is the contact.")
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    return render(request, "contacts/contact_form.html", {"form": form}, status=status)


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
@_with_contact
def consent_new(request: HttpRequest, contact: Contact) -> HttpResponse:
    form = ConsentForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            services.consent_record(
                contact=contact, actor=Actor.of(request.user), **form.service_arguments()
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, "Consent recorded.")
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    return render(
        request, "contacts/consent_form.html", {"form": form, "contact": contact}, status=status
    )


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
@_with_contact
def disclosure_new(request: HttpRequest, contact: Contact) -> HttpResponse:
    form = DisclosureForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            services.disclosure_record(
                contact=contact, actor=Actor.of(request.user), **form.service_arguments()
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, "Disclosure recorded.")
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    return render(
        request,
        "contacts/disclosure_form.html",
        {"form": form, "contact": contact, "key_suggestions": DISCLOSURE_KEY_SUGGESTIONS},
        status=status,
    )


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
def disclosure_withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks for confirmation; POST withdraws. Only a disclosure the user may see."""
    disclosure = get_object_or_404(
        selectors.disclosures_visible_to(request.user).select_related("contact"), pk=pk
    )
    error = None
    status = 200
    if request.method == "POST":
        try:
            services.disclosure_withdraw(disclosure=disclosure, actor=Actor.of(request.user))
        except DomainError as violation:
            error, status = violation.detail, error_status(violation)
        else:
            messages.success(request, f"The disclosure of {disclosure.key} was withdrawn.")
            return redirect("contact", pk=disclosure.contact_id)
    return render(
        request,
        "contacts/withdraw_confirm.html",
        {"disclosure": disclosure, "contact": disclosure.contact, "error": error},
        status=status,
    )


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
@_with_contact
def contact_merge(request: HttpRequest, contact: Contact) -> HttpResponse:
    """Merge another contact into this one: POST once to review, again (confirmed) to merge."""
    form = ContactMergeForm(
        request.POST if request.method == "POST" else None, keep=contact, user=request.user
    )
    status = 200
    if form.is_valid():
        other: Contact = form.cleaned_data["merge"]
        if not form.cleaned_data["confirmed"]:
            return render(
                request,
                "contacts/merge_confirm.html",
                {"contact": contact, "other": other, "reason": form.cleaned_data["reason"]},
            )
        try:
            services.contact_merge(
                keep=contact,
                merge=other,
                actor=Actor.of(request.user),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, f"{other.display_name} was merged into this one.")
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    return render(
        request, "contacts/merge_form.html", {"form": form, "contact": contact}, status=status
    )


@role_required(*CONTACT_PAGE_WRITERS)
@require_http_methods(["GET", "POST"])
@_with_contact
def contact_organization(request: HttpRequest, contact: Contact) -> HttpResponse:
    """Move the person to another organization (or to none), with a reason, on the record."""
    form = OrganizationMoveForm(
        request.POST if request.method == "POST" else None,
        initial={"organization": contact.organization_id},
    )
    status = 200
    if form.is_valid():
        organization = form.cleaned_data["organization"]
        try:
            services.contact_organization_move(
                contact=contact,
                organization=organization,
                actor=Actor.of(request.user),
                reason=form.cleaned_data["reason"],
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            where = organization.name if organization is not None else "no organization"
            messages.success(request, f"{contact.display_name} moved to {where}.")
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    return render(
        request,
        "contacts/organization_form.html",
        {"form": form, "contact": contact},
        status=status,
    )


# --- the privacy officer's pages -------------------------------------------------------


@role_required(Role.PRIVACY_OFFICER)
@require_http_methods(["GET", "POST"])
@_with_contact
def contact_erase(request: HttpRequest, contact: Contact) -> HttpResponse:
    form = ContactEraseForm(request.POST if request.method == "POST" else None, contact=contact)
    status = 200
    if form.is_valid():
        try:
            services.contact_erase(
                contact=contact, actor=Actor.of(request.user), reason=form.cleaned_data["reason"]
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, "The person was erased: no personal data about them remains.")
            return HttpResponseRedirect(reverse("contacts"))
    elif form.is_bound:
        status = 400
    return render(
        request,
        "contacts/erase.html",
        {
            "form": form,
            "contact": contact,
            "erase_word": ERASE_WORD,
            "merged_count": len(selectors.contact_ids_merged_into(contact)) - 1,
        },
        status=status,
    )


@role_required(Role.PRIVACY_OFFICER)
@require_http_methods(["GET", "POST"])
@_with_contact
def contact_export(request: HttpRequest, contact: Contact) -> HttpResponse:
    """GET asks for confirmation (the export is on the record); POST downloads the JSON."""
    error = None
    status = 200
    if request.method == "POST":
        try:
            data = services.contact_subject_access_export(
                contact=contact, actor=Actor.of(request.user)
            )
        except DomainError as violation:
            error, status = violation.detail, error_status(violation)
        else:
            response = HttpResponse(
                json.dumps(data, indent=2, ensure_ascii=False),
                content_type="application/json; charset=utf-8",
            )
            response["Content-Disposition"] = (
                f'attachment; filename="contact-{contact.pk}-subject-access.json"'
            )
            # Personal data: no browser or proxy should keep a copy.
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request, "contacts/export.html", {"contact": contact, "error": error}, status=status
    )
