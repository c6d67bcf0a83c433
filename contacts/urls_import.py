"""Pages for CSV imports of touches: included from ``leadrecord.urls``."""

from django.urls import path

from . import views_touches

urlpatterns = [
    path("touches/import/", views_touches.touch_import_upload, name="touch-import"),
    path(
        "touches/import/template.csv",
        views_touches.touch_import_template,
        name="touch-import-template",
    ),
    path("touches/import/<id:pk>/", views_touches.touch_import_job, name="touch-import-job"),
    path(
        "touches/import/<id:pk>/start/",
        views_touches.touch_import_start,
        name="touch-import-start",
    ),
    path(
        "touches/import/<id:pk>/errors.csv",
        views_touches.touch_import_errors,
        name="touch-import-errors",
    ),
]
