"""The buyer's public form pages and the marketer's form pages.

The public pages (``/f/<slug>/``, ``/f/<slug>/embed/``) need no login and act on
no one's session: whatever staff session the browser carries is never read,
and every write is the person's own (``Actor.person``). They take posts from
other sites' plain HTML forms, which cannot carry this site's CSRF token, so
CSRF protection is off for them; what a forged cross-site post could do is no
more than anyone can do by filling in the form, and what guards it is the
signed timing field, the honeypot, the per-address rate limit and the size
limit. A failed check writes nothing.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.views.decorators.clickjacking import xframe_options_exempt
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from leadrecord.errors import DomainError, form_error_show
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from leadrecord.throttling import AddressThrottle
from leadrecord.views_access import role_required

from . import selectors, services
from .forms import (
    HONEYPOT_FIELD,
    TIMING_FIELD,
    BuyerFormCreateForm,
    PublicForm,
    timing_read,
    timing_token,
)
from .models import BuyerForm

VISITOR_COOKIE = "lr_vid"
# A visitor id lives as long as a year; withdrawing analytics consent ends it sooner.
VISITOR_COOKIE_MAX_AGE = 365 * 24 * 3600
_HTML = f"text/html; charset={settings.DEFAULT_CHARSET}"
PER_PAGE = 50


class FormPostThrottle(AddressThrottle):
    scope = "buyer-form"
    setting = "BUYER_FORM_RATE_LIMIT"


def _public_render(
    request: HttpRequest,
    buyer_form: BuyerForm,
    public: PublicForm,
    *,
    embed: bool,
    status: int = 200,
    notice: str = "",
) -> HttpResponse:
    return render(
        request,
        "buyers/form_embed.html" if embed else "buyers/form_page.html",
        {
            "buyer_form": buyer_form,
            "form": public,
            "embed": embed,
            "timing": timing_token(buyer_form.slug, time.time()),
            "timing_field": TIMING_FIELD,
            "honeypot_field": HONEYPOT_FIELD,
            "notice": notice,
            "action": reverse("buyer_form", kwargs={"slug": buyer_form.slug}),
        },
        status=status,
    )


def _initial_from_query(request: HttpRequest, public: PublicForm) -> dict[str, str]:
    """UTM fields and click ids on the page's address travel on as hidden fields."""
    initial: dict[str, str] = {}
    for name, field in public.fields.items():
        if field.widget.is_hidden and name in request.GET:
            initial[name] = request.GET[name]
    return initial


@csrf_exempt
@xframe_options_exempt
@require_http_methods(["GET", "POST"])
def form_page(request: HttpRequest, slug: str, embed: bool = False) -> HttpResponse:
    buyer_form = selectors.form_published(slug)
    if buyer_form is None:
        raise Http404("No such form.")
    visitor_token = request.COOKIES.get(VISITOR_COOKIE)
    skip = selectors.keys_already_disclosed(visitor_token)
    embed = embed or request.POST.get("lr_embed") == "1"
    if request.method == "GET":
        public = PublicForm(form=buyer_form, skip_keys=skip)
        initial = _initial_from_query(request, public)
        # The page that shows the form: this one, or the page around the iframe.
        referrer = request.META.get("HTTP_REFERER", "")
        initial.setdefault("page_url", referrer if embed else request.build_absolute_uri())
        if not embed:
            initial.setdefault("referrer", referrer)
        public = PublicForm(initial=initial, form=buyer_form, skip_keys=skip)
        return _frameable(_public_render(request, buyer_form, public, embed=embed))
    return _frameable(_form_post(request, buyer_form, visitor_token, skip, embed=embed))


def _form_post(
    request: HttpRequest,
    buyer_form: BuyerForm,
    visitor_token: str | None,
    skip: frozenset[str],
    *,
    embed: bool,
) -> HttpResponse:
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > settings.BUYER_FORM_MAX_BYTES:
        return render(request, "buyers/refused.html", {"reason": "too_large"}, status=413)
    throttle = FormPostThrottle()
    if not throttle.allow(request):
        response = render(request, "buyers/refused.html", {"reason": "too_many"}, status=429)
        response["Retry-After"] = str(int(throttle.wait()))
        return response
    public = PublicForm(request.POST, form=buyer_form, skip_keys=skip)
    if request.POST.get(HONEYPOT_FIELD):
        # A bot: it is told what a person is told, and nothing is written.
        return _thanks(buyer_form, embed=embed)
    shown = timing_read(request.POST.get(TIMING_FIELD, ""), buyer_form.slug)
    if shown is None or time.time() - shown < settings.BUYER_FORM_MIN_SECONDS:
        # Sent too fast for a person, or from a page that did not show the form
        # (a plain HTML embed has no timing field): shown again, to send once more.
        public.is_valid()
        return _public_render(
            request,
            buyer_form,
            public,
            embed=embed,
            status=400,
            notice="Please check your answers and send the form again.",
        )
    if not public.is_valid():
        return _public_render(request, buyer_form, public, embed=embed, status=400)
    try:
        sent = services.form_submit(
            form=buyer_form,
            data=public.form_input(),
            arrival=public.arrival(
                page_url=request.META.get("HTTP_REFERER", ""),
                referrer="",
            ),
            visitor_token=visitor_token,
        )
    except DomainError as error:
        if error.code == services.FORM_NOT_PUBLISHED:
            # Unpublished since this process read it: gone, here too, from now on.
            selectors.form_published_forget(buyer_form.slug)
            raise Http404("No such form.") from error
        status = form_error_show(public, error)
        return _public_render(request, buyer_form, public, embed=embed, status=status)
    response = _thanks(buyer_form, embed=embed)
    if sent.visitor_token:
        visitor_cookie_set(response, sent.visitor_token)
    return response


def _thanks(buyer_form: BuyerForm, *, embed: bool) -> HttpResponse:
    """The thank-you page. Rendered without the request: a public page shows nothing of
    a user or a session, and the context processors (the user, their navigation) cost
    more than the page."""
    return HttpResponse(_thanks_page(buyer_form.title, embed=embed), content_type=_HTML)


@functools.lru_cache(maxsize=256)
def _thanks_page(title: str, *, embed: bool) -> bytes:
    """The thank-you page names the form's title and nothing else that changes: rendered
    and encoded once per title in a process (every post by a person or a bot answers it)."""
    return loader.render_to_string(
        "buyers/thanks.html", {"buyer_form": {"title": title}, "embed": embed}
    ).encode(settings.DEFAULT_CHARSET)


def visitor_cookie_set(response: HttpResponse, token: str) -> None:
    """The first-party visitor id, set only after analytics consent."""
    response.set_cookie(
        VISITOR_COOKIE,
        token,
        max_age=VISITOR_COOKIE_MAX_AGE,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def form_embed(request: HttpRequest, slug: str) -> HttpResponse:
    return form_page(request, slug, embed=True)


def _frameable(response: HttpResponse) -> HttpResponse:
    """The public form may sit in an iframe on the company's own site."""
    response.headers["Content-Security-Policy"] = settings.CONTENT_SECURITY_POLICY.replace(
        "frame-ancestors 'none'", f"frame-ancestors {settings.BUYER_FRAME_ANCESTORS}"
    )
    return response


# --- the marketer's pages -------------------------------------------------------------


@role_required(*selectors.FORM_ROLES)
@require_http_methods(["GET", "POST"])
def form_list(request: HttpRequest) -> HttpResponse:
    create = BuyerFormCreateForm(request.POST or None)
    status = 200
    if request.method == "POST":
        if create.is_valid():
            data: dict[str, Any] = dict(create.cleaned_data)
            try:
                buyer_form = services.buyer_form_create(
                    actor=Actor.of(request.user), created_by=request.user, **data
                )
            except DomainError as error:
                status = form_error_show(create, error)
            else:
                return redirect("buyer_form_detail", pk=buyer_form.pk)
        else:
            status = 400
    page = Paginator(selectors.forms_all(), PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "buyers/form_list.html", {"page": page, "form": create}, status=status)


@role_required(*selectors.FORM_ROLES)
@require_http_methods(["GET", "POST"])
def form_detail(request: HttpRequest, pk: int) -> HttpResponse:
    buyer_form = get_object_or_404(selectors.forms_all(), pk=pk)
    if request.method == "POST":
        services.buyer_form_publish(
            form=buyer_form,
            published=request.POST.get("published") == "1",
            actor=Actor.of(request.user),
        )
        return redirect("buyer_form_detail", pk=buyer_form.pk)
    page = Paginator(selectors.form_submissions(buyer_form), PER_PAGE).get_page(
        request.GET.get("page")
    )
    hosted = request.build_absolute_uri(reverse("buyer_form", kwargs={"slug": buyer_form.slug}))
    embed = request.build_absolute_uri(
        reverse("buyer_form_embed", kwargs={"slug": buyer_form.slug})
    )
    return render(
        request,
        "buyers/form_detail.html",
        {
            "buyer_form": buyer_form,
            "page": page,
            "hosted_url": hosted,
            "embed_url": embed,
            "snippet": PublicForm(form=buyer_form),
            "by_campaign": selectors.submissions_by_campaign(buyer_form),
        },
    )


@role_required(Role.PRIVACY_OFFICER)
@require_http_methods(["GET"])
def erasure_requests(request: HttpRequest) -> HttpResponse:
    """The privacy officer's queue of people who asked, from their portal, to be erased."""
    page = Paginator(selectors.erasure_requests_waiting(), PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(request, "buyers/erasure_requests.html", {"page": page})
