"""The reports app's pages: the dashboards of managers, marketers and sales reps."""

from django.urls import path

from . import views, views_home, views_lists, views_method, views_runs

urlpatterns = [
    path("", views_home.home, name="home"),
    path("reports/", views.reports_home, name="reports"),
    path("reports/manager/", views.dashboard_manager, name="dashboard-manager"),
    path("reports/marketing/", views.dashboard_marketing, name="dashboard-marketing"),
    path("reports/sales/", views.dashboard_sales, name="dashboard-sales"),
    path(
        "reports/attribution/recompute/",
        views_runs.attribution_recompute,
        name="attribution-recompute",
    ),
    path("reports/attribution/runs/<id:pk>/", views_runs.attribution_run, name="attribution-run"),
    path(
        "reports/attribution-method/",
        views_method.attribution_method,
        name="attribution-method",
    ),
]

# The lists behind the leakage numbers (reports.views_lists).
urlpatterns += views_lists.urlpatterns
