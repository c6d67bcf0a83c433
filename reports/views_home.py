"""The home page: each role's work in numbers, every number a link to its list."""

from __future__ import annotations

from typing import cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from leadrecord.roles import user_roles

from .home import home_work


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    user = cast(User, request.user)
    return render(
        request,
        "home.html",
        {"roles": sorted(user_roles(user)), "work": home_work(user)},
    )
