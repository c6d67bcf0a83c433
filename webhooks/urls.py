from django.urls import path

from . import views

urlpatterns = [
    path("webhooks/", views.endpoints, name="webhooks"),
    path("webhooks/<id:pk>/", views.endpoint_detail, name="webhook-endpoint"),
    path("webhooks/<id:pk>/rotate-secret/", views.endpoint_rotate, name="webhook-endpoint-rotate"),
    path("webhooks/<id:pk>/enable/", views.endpoint_enable, name="webhook-endpoint-enable"),
    path("webhooks/<id:pk>/replay/", views.endpoint_replay, name="webhook-endpoint-replay"),
]
