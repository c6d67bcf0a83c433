"""The buyer's public pages (fixed paths: websites embed them), the marketer's form pages,
and the forms API."""

from django.urls import path

from . import apis, views, views_portal, views_visits

urlpatterns = [
    path("f/<slug:slug>/", views.form_page, name="buyer_form"),
    path("f/<slug:slug>/embed/", views.form_embed, name="buyer_form_embed"),
    path("forms/", views.form_list, name="buyer_forms"),
    path("forms/<id:pk>/", views.form_detail, name="buyer_form_detail"),
    path("erasure-requests/", views.erasure_requests, name="erasure_requests"),
    path("c.js", views_visits.visit_script, name="visit_script"),
    path("c.gif", views_visits.visit_pixel, name="visit_pixel"),
    path("c/", views_visits.visit_collect, name="visit_collect"),
    path("me/", views_portal.portal_home, name="portal"),
    path("me/enter/<str:token>/", views_portal.portal_enter, name="portal_enter"),
    path(
        "me/disclosures/<id:pk>/withdraw/",
        views_portal.portal_disclosure_withdraw,
        name="portal_disclosure_withdraw",
    ),
    path(
        "me/disclosures/<id:pk>/audience/",
        views_portal.portal_disclosure_audience,
        name="portal_disclosure_audience",
    ),
    path("me/consents/", views_portal.portal_consent, name="portal_consent"),
    path("me/stage/", views_portal.portal_stage, name="portal_stage"),
    path("me/export/", views_portal.portal_export, name="portal_export"),
    path("me/erase/", views_portal.portal_erase, name="portal_erase"),
    path("me/receipts/<id:seq>/", views_portal.portal_receipt, name="portal_receipt"),
    path("me/signout/", views_portal.portal_signout, name="portal_signout"),
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
