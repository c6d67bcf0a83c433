"""The person's portal (``/me/``): a sign-in link by email, then their own record.

No staff session is read here: the person is signed in by a signed cookie of
their own (``lr_me``), set when they press the button behind a link from their
mailbox. Every change is a POST with Django's CSRF token (these pages are only
ever on this site) and calls one service in ``buyers.portal``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from contacts.models import EMAIL_MAX_LENGTH, ConsentPurpose, Contact, JourneyStage
from leadrecord.errors import DomainError, error_status
from leadrecord.throttling import AddressThrottle

from . import portal, selectors
from .forms import AUDIENCE_CHOICES
from .services import person_of, visitor_start
from .views import VISITOR_COOKIE, visitor_cookie_set

PORTAL_COOKIE = "lr_me"
PORTAL_CHANGES_SHOWN = 100  # the latest; the export holds every one
_COOKIE_SALT = "buyers.portal-session"

PortalView = Callable[..., HttpResponse]


class PortalLinkThrottle(AddressThrottle):
    scope = "portal-link"
    setting = "PORTAL_LINK_RATE_LIMIT"


class EntryForm(forms.Form):
    email = forms.EmailField(label="Your email address", max_length=EMAIL_MAX_LENGTH)


def _signed_in(request: HttpRequest) -> Contact | None:
    try:
        value = request.get_signed_cookie(
            PORTAL_COOKIE, salt=_COOKIE_SALT, max_age=settings.PORTAL_SESSION_MINUTES * 60
        )
    except (KeyError, signing.BadSignature):
        return None
    if not isinstance(value, str) or not value.isdigit():
        return None
    contact = Contact.objects.filter(pk=int(value)).first()
    if contact is None:
        return None
    contact = person_of(contact)
    return contact if contact.is_living else None


def _person_required(view: PortalView) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        contact = _signed_in(request)
        if contact is None:
            return redirect("portal")
        return view(request, contact, *args, **kwargs)

    return wrapped


def _entry(
    request: HttpRequest, form: EntryForm, *, status: int = 200, **extra: Any
) -> HttpResponse:
    return render(request, "buyers/portal_entry.html", {"form": form, **extra}, status=status)


@never_cache
@require_http_methods(["GET", "POST"])
def portal_home(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        contact = _signed_in(request)
        if contact is None:
            return _entry(request, EntryForm())
        return _portal_page(request, contact)
    throttle = PortalLinkThrottle()
    if not throttle.allow(request):
        response = _entry(request, EntryForm(), status=429, too_many=True)
        response["Retry-After"] = str(int(throttle.wait()))
        return response
    form = EntryForm(request.POST)
    if not form.is_valid():
        return _entry(request, form, status=400)
    try:
        portal.portal_link_request(
            email=form.cleaned_data["email"],
            link_for=lambda token: request.build_absolute_uri(
                reverse("portal_enter", kwargs={"token": token})
            ),
        )
    except DomainError as error:
        form.add_error("email", error.detail)
        return _entry(request, form, status=error_status(error))
    # The same page whether or not the address is on record.
    return render(request, "buyers/portal_sent.html")


def _portal_page(
    request: HttpRequest, contact: Contact, status: int = 200, error: str = ""
) -> HttpResponse:
    record = selectors.portal_record(contact)
    return render(
        request,
        "buyers/portal.html",
        {
            "record": record,
            "audience_choices": AUDIENCE_CHOICES,
            "audience_words": selectors.AUDIENCE_WORDS,
            "stages": JourneyStage.choices,
            "purposes": ConsentPurpose.choices,
            "error": error,
            "changes": [
                (entry, selectors.action_label(entry.action))
                for entry in selectors.portal_changes(contact)[:PORTAL_CHANGES_SHOWN]
            ],
        },
        status=status,
    )


@never_cache
@require_http_methods(["GET", "POST"])
def portal_enter(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners follow links); POST signs in."""
    try:
        if request.method == "GET":
            portal.portal_link_check(token)
            return render(request, "buyers/portal_enter.html", {"token": token})
        contact = portal.portal_enter(token=token)
    except DomainError as error:
        return _entry(request, EntryForm(), status=error_status(error), link_refused=error.detail)
    response = HttpResponseRedirect(reverse("portal"))
    response.set_signed_cookie(
        PORTAL_COOKIE,
        str(contact.pk),
        salt=_COOKIE_SALT,
        max_age=settings.PORTAL_SESSION_MINUTES * 60,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )
    return response


def _done(request: HttpRequest, contact: Contact, call: Callable[[], object]) -> HttpResponse:
    try:
        call()
    except DomainError as error:
        return _portal_page(request, contact, status=error_status(error), error=error.detail)
    return redirect("portal")


@never_cache
@require_POST
@_person_required
def portal_disclosure_withdraw(request: HttpRequest, contact: Contact, pk: int) -> HttpResponse:
    return _done(
        request,
        contact,
        lambda: portal.portal_disclosure_withdraw(contact=contact, disclosure_id=pk),
    )


@never_cache
@require_POST
@_person_required
def portal_disclosure_audience(request: HttpRequest, contact: Contact, pk: int) -> HttpResponse:
    audience = request.POST.get("audience", "")
    return _done(
        request,
        contact,
        lambda: portal.portal_disclosure_audience(
            contact=contact, disclosure_id=pk, audience=audience
        ),
    )


@never_cache
@require_POST
@_person_required
def portal_consent(request: HttpRequest, contact: Contact) -> HttpResponse:
    purpose = request.POST.get("purpose", "")
    granted = request.POST.get("granted") == "1"
    response = _done(
        request,
        contact,
        lambda: portal.portal_consent_set(contact=contact, purpose=purpose, granted=granted),
    )
    if response.status_code == 302 and purpose == ConsentPurpose.ANALYTICS:
        if granted:
            token = visitor_start(
                contact=contact, visitor_token=request.COOKIES.get(VISITOR_COOKIE)
            )
            if token:
                visitor_cookie_set(response, token)
        else:
            response.delete_cookie(VISITOR_COOKIE)
    return response


@never_cache
@require_POST
@_person_required
def portal_stage(request: HttpRequest, contact: Contact) -> HttpResponse:
    stage = request.POST.get("stage", "")
    audience = request.POST.get("audience", "")
    return _done(
        request,
        contact,
        lambda: portal.portal_stage_set(contact=contact, stage=stage, audience=audience),
    )


@never_cache
@require_POST
@_person_required
def portal_export(request: HttpRequest, contact: Contact) -> HttpResponse:
    data = portal.portal_export(contact=contact)
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="my-data.json"'
    return response


@never_cache
@require_POST
@_person_required
def portal_erase(request: HttpRequest, contact: Contact) -> HttpResponse:
    return _done(request, contact, lambda: portal.portal_erasure_request(contact=contact))


@require_POST
def portal_signout(request: HttpRequest) -> HttpResponse:
    response = redirect("portal")
    response.delete_cookie(PORTAL_COOKIE)
    return response


@never_cache
@require_GET
@_person_required
def portal_receipt(request: HttpRequest, contact: Contact, seq: int) -> HttpResponse:
    """A receipt of one of the person's own changes, as JSON to keep."""
    receipt = selectors.portal_receipt(contact, seq)
    if receipt is None:
        raise Http404("No such change of yours.")
    response = HttpResponse(
        json.dumps(receipt, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="receipt-{seq}.json"'
    return response
