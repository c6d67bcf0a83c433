from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


class ContentSecurityPolicyMiddleware:
    """Sends the project's Content-Security-Policy and Permissions-Policy."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"
        )
        return response


class FriendlyMethodNotAllowedMiddleware:
    """Gives a page's bare 405 (a GET on an address that only takes a form's POST) a page
    that says so and leads on; the API keeps its JSON errors."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code != 405 or request.path.startswith("/api/"):
            return response
        if getattr(response, "streaming", False) or response.content:
            return response
        page = render(
            request,
            "405.html",
            {"method": request.method, "allowed": response.headers.get("Allow", "")},
            status=405,
        )
        page.headers["Allow"] = response.headers.get("Allow", "")
        return page
