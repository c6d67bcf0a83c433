"""The buyer's public pages (fixed paths: websites embed them), the marketer's form pages,
and the forms API."""

from django.urls import path

from . import apis, views

urlpatterns = [
    path("f/<slug:slug>/", views.form_page, name="buyer_form"),
    path("f/<slug:slug>/embed/", views.form_embed, name="buyer_form_embed"),
    path("forms/", views.form_list, name="buyer_forms"),
    path("forms/<id:pk>/", views.form_detail, name="buyer_form_detail"),
]

api_urlpatterns = [
    path("forms/", apis.FormListCreateApi.as_view(), name="api-forms"),
    path("forms/<id:pk>/", apis.FormDetailApi.as_view(), name="api-form"),
    path(
        "forms/<id:pk>/submissions/",
        apis.FormSubmissionListApi.as_view(),
        name="api-form-submissions",
    ),
]
