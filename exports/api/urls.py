"""Routes under /{tenant}/api/v4/."""
from django.urls import path

from exports.api import views
from exports.imports.api import views as import_views

urlpatterns = [
    path("export", views.ExportCreateView.as_view(), name="export-create"),
    path("export/status", views.ExportTenantStatusView.as_view(), name="export-tenant-status"),
    path("export/<str:job_id>/status", views.ExportStatusView.as_view(), name="export-status"),
    path("export/<str:job_id>", views.ExportCancelView.as_view(), name="export-cancel"),
    path(
        "export/<str:job_id>/file/<str:file_name>",
        views.ExportFileView.as_view(),
        name="export-file",
    ),
    path("import", import_views.ImportCreateView.as_view(), name="import-create"),
    path("import/status", import_views.ImportTenantStatusView.as_view(), name="import-tenant-status"),
    path("import/<str:job_id>/status", import_views.ImportStatusView.as_view(), name="import-status"),
]
