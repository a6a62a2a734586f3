from django.contrib import admin
from django.urls import include, path

from realtime.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("realtime.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("", include("realtime.urls")),
]
