"""The webhook pages, for managers: endpoints, their delivery log and dead letters, replay."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from leadrecord.errors import DomainError, error_status, form_error_show
from leadrecord.ledger import Actor
from leadrecord.roles import Role
from leadrecord.views_access import role_required

from . import selectors, services
from .forms import EndpointForm, ReplayForm
from .models import Endpoint


@role_required(Role.MANAGER)
def endpoints(request: HttpRequest) -> HttpResponse:
    form = EndpointForm(request.POST if request.method == "POST" else None)
    status = 200
    if form.is_valid():
        try:
            endpoint, secret = services.endpoint_create(
                url=form.cleaned_data["url"],
                event_types=form.cleaned_data["event_types"],
                audience=form.cleaned_data["audience"],
                actor=Actor.of(request.user),
            )
        except DomainError as violation:
            status = form_error_show(form, violation)
        else:
            return render(request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret})
    elif form.is_bound:
        status = 400
    return render(
        request,
        "webhooks/list.html",
        {"endpoints": selectors.endpoints_all(), "form": form},
        status=status,
    )


@role_required(Role.MANAGER)
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    status = request.GET.get("status") or None
    if status not in (None, "succeeded", "failed"):
        status = None
    page = Paginator(selectors.endpoint_attempts(endpoint, status=status), 50).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "webhooks/detail.html",
        {
            "endpoint": endpoint,
            "page": page,
            "status": status or "",
            "dead_letters": selectors.endpoint_dead_letters(endpoint)[:100],
        },
    )


@role_required(Role.MANAGER)
@require_POST
def endpoint_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    endpoint, secret = services.endpoint_rotate_secret(
        endpoint=endpoint, actor=Actor.of(request.user)
    )
    return render(
        request, "webhooks/secret.html", {"endpoint": endpoint, "secret": secret, "rotated": True}
    )


@role_required(Role.MANAGER)
@require_POST
def endpoint_enable(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    try:
        services.endpoint_enable(endpoint=endpoint, actor=Actor.of(request.user))
    except DomainError as violation:
        messages.error(request, violation.detail)
    else:
        messages.success(request, "Endpoint enabled: what waited is on its way.")
    return redirect("webhook-endpoint", pk=endpoint.pk)


@role_required(Role.MANAGER)
@require_POST
def endpoint_replay(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(Endpoint, pk=pk)
    form = ReplayForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Name a message or ask for every failed one.", status=400)
    message_id = form.cleaned_data["message_id"]
    try:
        queued = services.messages_replay(
            endpoint=endpoint,
            actor=Actor.of(request.user),
            message_ids=[message_id] if message_id else None,
            failed=not message_id and form.cleaned_data["failed"],
        )
    except DomainError as violation:
        return HttpResponse(violation.detail, status=error_status(violation))
    messages.success(request, f"{queued} message{'s' if queued != 1 else ''} queued again.")
    return redirect("webhook-endpoint", pk=endpoint.pk)
