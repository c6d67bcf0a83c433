from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, register_converter
from django.views.defaults import page_not_found

from . import views
from .api import api_not_found
from .converters import IdConverter

register_converter(IdConverter, "id")

urlpatterns = [
    # First the paths asked most often: the buyer's public ones (every form post and page
    # view of the websites that embed them) and the API (other systems' events). Each
    # include with an empty prefix before a path is one more list of patterns tried and
    # failed for it, on every request.
    path("", include("buyers.urls")),
    path("api/v1/", include("leadrecord.api_urls")),
    path("guide/", views.guide, name="guide"),
    path("record/", views.ledger_page, name="ledger"),
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("contacts.urls")),
    path("", include("contacts.urls_touches")),
    path("", include("contacts.urls_import")),
    path("", include("handoff.urls_pages")),
    path("", include("reports.urls_pages")),
    path("", include("webhooks.urls")),
    path("admin/", admin.site.urls),
]


def handler404(request: HttpRequest, exception: Exception) -> HttpResponse:
    if request.path.startswith("/api/"):
        return api_not_found(request, exception)
    return page_not_found(request, exception)
