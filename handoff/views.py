"""The handoff loop's pages: the sales queue, the returned-to-marketing list, handing a person
off, deals with their buying group and sale events, rulesets and targets.

Each view parses its input with a form, checks the role, calls one service or
selector, and renders. A service's refusal (a ``DomainError``) is shown on the
form, or as a message, with the violation's status (400, 403 or 409); nothing
was written.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from django.contrib import messages
from django.contrib.auth.models import User
from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.models import Contact
from leadrecord.dates import duration_text, moment_text
from leadrecord.errors import DomainError, error_status, form_error_show
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from leadrecord.views_access import role_required

from . import selectors, services
from .forms import (
    DealCreateForm,
    HandoffCreateForm,
    HandoffRejectForm,
    RulesetForm,
    SaleEventForm,
    SourceOverrideForm,
    TargetForm,
)
from .models import Deal, Handoff, HandoffStatus, Ruleset, RulesetStatus

# Who may do what on these pages (docs/api.md "Who may call what", for people in a browser).
DECIDERS = (Role.SALES_REP, Role.MANAGER)  # the queue, accept, reject
HANDERS = (Role.MARKETER, Role.MANAGER)  # hand off, the returned list
DEAL_ROLES = (Role.SALES_REP, Role.MANAGER)
RULE_ROLES = (Role.MANAGER,)
PER_PAGE = 50  # rows per page on the lists
RECENTLY_ACCEPTED = 20  # the rep's own accepted handoffs shown under the queue

SLA_LABELS = {"on_time": "on time", "due_soon": "due soon", "overdue": "overdue"}
BUYER_SIGNAL_LABELS = {
    "consent:sales_contact": "Consented to sales contact",
    "stage:ready_to_talk": "Said they are ready to talk",
}


def _page(request: HttpRequest, items: Any) -> Page[Any]:
    return Paginator(items, PER_PAGE).get_page(request.GET.get("page"))


def _user(request: HttpRequest) -> User:
    # role_required has let only a signed-in user through.
    return cast(User, request.user)


@dataclass(frozen=True)
class HandoffRow:
    handoff: Handoff
    sla: str
    signal: str


# What a reader who may not see the say-so reads (the API's null).
SAY_SO_NOT_SHOWN = "Not shown"


def _handoff_row(handoff: Handoff, user: User) -> HandoffRow:
    signal = selectors.handoff_say_so_for(user, handoff)
    return HandoffRow(
        handoff,
        SLA_LABELS.get(selectors.sla_state(handoff), selectors.sla_state(handoff)),
        BUYER_SIGNAL_LABELS.get(signal, signal) if signal else SAY_SO_NOT_SHOWN,
    )


@dataclass(frozen=True)
class AcceptedRow:
    handoff: Handoff
    deals: list[Deal]  # opened since it was accepted: "Create a deal" only when none


# --- the sales queue -----------------------------------------------------------


def _queue(request: HttpRequest, *, status: int = 200) -> HttpResponse:
    user = _user(request)
    page = _page(request, selectors.handoff_queue(user))
    return render(
        request,
        "handoff/queue.html",
        {
            "page": page,
            "rows": [_handoff_row(handoff, user) for handoff in page],
            "accepted": [
                AcceptedRow(handoff, list(selectors.deals_from_handoff(handoff)))
                for handoff in selectors.handoffs_accepted_by(user)[:RECENTLY_ACCEPTED]
            ],
        },
        status=status,
    )


@role_required(*DECIDERS)
@require_GET
def handoff_queue(request: HttpRequest) -> HttpResponse:
    return _queue(request)


@role_required(*DECIDERS)
@require_POST
def handoff_accept(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = get_object_or_404(Handoff, pk=pk)
    try:
        handoff = services.handoff_accept(handoff=handoff, user=_user(request))
    except DomainError as violation:
        messages.error(
            request, f"{handoff.contact.display_name} was not accepted: {violation.detail}"
        )
        return _queue(request, status=error_status(violation))
    late = handoff.decided_late_by
    messages.success(
        request,
        f"You accepted {handoff.contact.display_name}; they are yours now. "
        + (f"Recorded as {duration_text(late)} after the SLA. " if late else "")
        + "Create a deal when there is one.",
    )
    return redirect("handoff-queue")


@role_required(*DECIDERS)
@require_http_methods(["GET", "POST"])
def handoff_reject(request: HttpRequest, pk: int) -> HttpResponse:
    handoff = get_object_or_404(selectors.handoffs_visible_to(_user(request)), pk=pk)
    form = HandoffRejectForm(request.POST if request.method == "POST" else None)
    status = 200
    refusal = None
    if form.is_valid():
        try:
            handoff = services.handoff_reject(
                handoff=handoff,
                user=_user(request),
                reason=form.cleaned_data["reason"],
                note=form.cleaned_data["note"],
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            late = handoff.decided_late_by
            messages.success(
                request,
                f"{handoff.contact.display_name} went back to marketing with your reason."
                + (f" Recorded as {duration_text(late)} after the SLA." if late else ""),
            )
            return redirect("handoff-queue")
    elif form.is_bound:
        status = 400
    elif handoff.status != HandoffStatus.PENDING:
        refusal = f"This handoff is already {handoff.status}; nothing to decide."
        status = 409
    return render(
        request,
        "handoff/reject.html",
        {
            "form": form,
            "row": _handoff_row(handoff, _user(request)),
            "handoff": handoff,
            "refusal": refusal,
        },
        status=status,
    )


# --- marketing's side -------------------------------------------------------------


@role_required(*HANDERS)
@require_GET
def handoffs_returned(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    page = _page(request, selectors.handoffs_returned(user))
    return render(
        request,
        "handoff/returned.html",
        {"page": page, "rows": [_handoff_row(handoff, user) for handoff in page]},
    )


@role_required(*HANDERS)
@require_http_methods(["GET", "POST"])
def handoff_new(request: HttpRequest, pk: int) -> HttpResponse:
    """Hand a person to sales. Erased or merged people are found, so the refusal can say why."""
    contact = get_object_or_404(Contact.objects.select_related("organization"), pk=pk)
    readiness = services.handoff_readiness(contact=contact, actor=Actor.of(request.user))
    form = HandoffCreateForm(
        request.POST if request.method == "POST" else None,
        unqualified=readiness.unqualified is not None,
    )
    status = 200
    if form.is_valid():
        try:
            handoff = services.handoff_create(
                contact=contact,
                actor=Actor.of(request.user),
                note=form.cleaned_data["note"],
                assigned_to=form.cleaned_data["assigned_to"],
            )
        except DomainError as violation:
            # Most refusals are about the person, not a field of this form.
            form.add_error(None, violation.detail)
            status = error_status(violation)
        else:
            messages.success(
                request,
                f"{contact.display_name} was handed off to sales; "
                f"due by {moment_text(handoff.due_at)}.",
            )
            return redirect("contact", pk=contact.pk)
    elif form.is_bound:
        status = 400
    elif readiness.refusal is not None:
        # Said before the form is filled, not after.
        status = 409
    return render(
        request,
        "handoff/handoff_form.html",
        {
            "form": form,
            "contact": contact,
            "ruleset": selectors.ruleset_active(),
            "readiness": readiness,
        },
        status=status,
    )


# --- deals -------------------------------------------------------------------------


def _accepted_handoff(request: HttpRequest) -> Handoff | None:
    """The accepted handoff named by ``?handoff=`` that the new deal starts from, if any."""
    value = request.GET.get("handoff")
    if not value:
        return None
    if not value.isdigit() or len(value) > 18:
        raise Http404("No such handoff.")
    accepted = selectors.handoffs_all().filter(status=HandoffStatus.ACCEPTED)
    return get_object_or_404(accepted, pk=int(value))


def _deal_initial(handoff: Handoff | None, user: User) -> dict[str, Any]:
    initial: dict[str, Any] = {}
    if selectors.sales_users().filter(pk=user.pk).exists():
        initial["owner"] = user.pk
    if handoff is None:
        return initial
    contact = handoff.contact
    initial["member_email_0"] = contact.email
    initial["member_role_0"] = "champion"
    if handoff.owner_id:
        initial["owner"] = handoff.owner_id
    if contact.organization is not None:
        initial["organization"] = contact.organization.domain or contact.organization.name
        initial["name"] = contact.organization.name
    return initial


@role_required(*DEAL_ROLES)
@require_http_methods(["GET", "POST"])
def deal_new(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    handoff = _accepted_handoff(request)
    if request.method == "POST":
        form = DealCreateForm(request.POST)
    else:
        form = DealCreateForm(initial=_deal_initial(handoff, user))
    status = 200
    if form.is_valid():
        data = form.cleaned_data
        try:
            if handoff is not None:
                services.deal_from_handoff_check(
                    handoff=handoff, another_confirmed=data["confirm_another"]
                )
            deal, created = services.deal_create(
                name=data["name"],
                organization=data["organization"],
                members=data["members"],
                amount=data["amount"],
                owner=data["owner"],
                external_id=data["external_id"] or None,
                actor=Actor.of(user),
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            if created:
                messages.success(request, f"Deal created: {deal.get_derived_source_display()}.")
            else:
                messages.info(request, "A deal with this external id is on record: here it is.")
            return redirect("deal", pk=deal.pk)
    elif form.is_bound:
        status = 400
    existing = list(selectors.deals_from_handoff(handoff)) if handoff is not None else []
    return render(
        request,
        "handoff/deal_form.html",
        {"form": form, "handoff": handoff, "existing_deals": existing},
        status=status,
    )


def _deal_page(
    request: HttpRequest,
    deal: Deal,
    *,
    sale_form: SaleEventForm | None = None,
    override_form: SourceOverrideForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "handoff/deal_detail.html",
        {
            "deal": deal,
            "sale_form": sale_form or SaleEventForm(),
            "override_form": override_form or SourceOverrideForm(),
            "override_open": override_form is not None and bool(override_form.errors),
        },
        status=status,
    )


@role_required(*DEAL_ROLES)
@require_GET
def deal_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _deal_page(request, get_object_or_404(selectors.deals_all(), pk=pk))


@role_required(*DEAL_ROLES)
@require_POST
def sale_event_new(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_object_or_404(selectors.deals_all(), pk=pk)
    form = SaleEventForm(request.POST)
    if not form.is_valid():
        return _deal_page(request, deal, sale_form=form, status=400)
    try:
        event, _ = services.sale_event_record(
            deal=deal,
            kind=form.cleaned_data["kind"],
            amount=form.cleaned_data["amount"],
            occurred_at=form.cleaned_data["occurred_at"],
            actor=Actor.of(request.user),
        )
    except DomainError as violation:
        status = form_error_show(form, violation)
        return _deal_page(request, deal, sale_form=form, status=status)
    messages.success(request, f"Recorded: {event.get_kind_display()}.")
    return redirect("deal", pk=deal.pk)


@role_required(*DEAL_ROLES)
@require_POST
def deal_override_source(request: HttpRequest, pk: int) -> HttpResponse:
    deal = get_object_or_404(selectors.deals_all(), pk=pk)
    form = SourceOverrideForm(request.POST)
    if not form.is_valid():
        return _deal_page(request, deal, override_form=form, status=400)
    try:
        services.deal_source_override(
            deal=deal,
            source=form.cleaned_data["source"],
            reason=form.cleaned_data["reason"],
            actor=Actor.of(request.user),
        )
    except DomainError as violation:
        status = form_error_show(form, violation)
        return _deal_page(request, deal, override_form=form, status=status)
    messages.success(request, "The deal's source was overridden; the reason is on the record.")
    return redirect("deal", pk=deal.pk)


# --- rulesets ------------------------------------------------------------------------


@role_required(*RULE_ROLES)
@require_GET
def ruleset_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "handoff/ruleset_list.html",
        {"rulesets": selectors.rulesets_all(), "active": selectors.ruleset_active()},
    )


@role_required(*RULE_ROLES)
@require_http_methods(["GET", "POST"])
def ruleset_new(request: HttpRequest) -> HttpResponse:
    """A new draft; ``?from=<id>`` starts from a copy of that ruleset."""
    if request.method == "POST":
        form = RulesetForm(request.POST)
    else:
        source = request.GET.get("from", "")
        copied = (
            Ruleset.objects.filter(pk=int(source)).first()
            if source.isdigit() and len(source) <= 18
            else None
        )
        initial = RulesetForm.initial_from(copied) if copied else {}
        if copied:
            initial["name"] = f"{copied.name} (copy)"[: RulesetForm.base_fields["name"].max_length]  # type: ignore[attr-defined]
        form = RulesetForm(initial=initial)
    status = 200
    if form.is_valid():
        try:
            ruleset = services.ruleset_create(
                actor=Actor.of(request.user), **form.service_arguments()
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, f"Draft v{ruleset.version} saved. Review it, then activate.")
            return redirect("ruleset", pk=ruleset.pk)
    elif form.is_bound:
        status = 400
    return render(request, "handoff/ruleset_form.html", {"form": form}, status=status)


def _ruleset_page(request: HttpRequest, ruleset: Ruleset, *, status: int = 200) -> HttpResponse:
    active = selectors.ruleset_active()
    is_draft = ruleset.status == RulesetStatus.DRAFT
    return render(
        request,
        "handoff/ruleset_detail.html",
        {
            "ruleset": ruleset,
            "active": active,
            "is_draft": is_draft,
            "diff": selectors.ruleset_diff(ruleset, active) if is_draft else [],
            "points": sorted(ruleset.points.items()),
        },
        status=status,
    )


@role_required(*RULE_ROLES)
@require_GET
def ruleset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _ruleset_page(request, get_object_or_404(Ruleset, pk=pk))


@role_required(*RULE_ROLES)
@require_http_methods(["GET", "POST"])
def ruleset_edit(request: HttpRequest, pk: int) -> HttpResponse:
    ruleset = get_object_or_404(Ruleset, pk=pk)
    form = RulesetForm(
        request.POST if request.method == "POST" else None,
        initial=RulesetForm.initial_from(ruleset),
    )
    status = 200
    refusal = None
    if form.is_valid():
        try:
            services.ruleset_update(
                ruleset=ruleset, changes=form.service_arguments(), actor=Actor.of(request.user)
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            messages.success(request, f"Draft v{ruleset.version} saved.")
            return redirect("ruleset", pk=ruleset.pk)
    elif form.is_bound:
        status = 400
    elif not ruleset.is_editable:
        refusal = f"Ruleset v{ruleset.version} is {ruleset.status}; only drafts change."
        status = 409
    return render(
        request,
        "handoff/ruleset_form.html",
        {"form": form, "ruleset": ruleset, "refusal": refusal},
        status=status,
    )


@role_required(*RULE_ROLES)
@require_http_methods(["GET", "POST"])
def ruleset_activate(request: HttpRequest, pk: int) -> HttpResponse:
    """Activation is for good and rescores everyone: a page says what changes, then a
    POST with ``confirmed`` activates; a POST without it shows that page again."""
    ruleset = get_object_or_404(Ruleset, pk=pk)
    if request.method == "POST" and request.POST.get("confirmed") == "yes":
        try:
            ruleset = services.ruleset_activate(ruleset=ruleset, actor=Actor.of(request.user))
        except DomainError as violation:
            messages.error(request, violation.detail)
            return _ruleset_page(request, ruleset, status=error_status(violation))
        messages.success(
            request, f"Ruleset v{ruleset.version} is active; everyone is being rescored under it."
        )
        return redirect("ruleset", pk=ruleset.pk)
    if ruleset.status != RulesetStatus.DRAFT:
        messages.error(
            request, f"Ruleset v{ruleset.version} is {ruleset.status}; only drafts change."
        )
        return _ruleset_page(request, ruleset, status=409)
    active = selectors.ruleset_active()
    return render(
        request,
        "handoff/ruleset_activate.html",
        {
            "ruleset": ruleset,
            "active": active,
            "diff": selectors.ruleset_diff(ruleset, active),
            "rescored": selectors.contacts_rescored_on_activation(),
        },
    )


# --- targets -------------------------------------------------------------------------


def _targets(request: HttpRequest, form: TargetForm, status: int) -> HttpResponse:
    targets: QuerySet[Any] = selectors.targets_all()
    first_year, last_year = services.target_years()
    return render(
        request,
        "handoff/targets.html",
        {"form": form, "targets": targets, "first_year": first_year, "last_year": last_year},
        status=status,
    )


@role_required(*RULE_ROLES)
@require_http_methods(["GET", "POST"])
def targets(request: HttpRequest) -> HttpResponse:
    form = TargetForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            target, created = services.target_set(
                period=form.cleaned_data["period"],
                share=form.share(),
                actor=Actor.of(request.user),
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            verb = "set" if created else "changed"
            messages.success(request, f"Target for {target.period} {verb}.")
            return redirect("targets")
    elif form.is_bound:
        status = 400
    return _targets(request, form, status)
