"""Pages for import: included from ``leadrecord.urls``."""

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
