from django.contrib import admin
from django.urls import include, path

from realtime.gateway.health import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("realtime.chat.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("", include("realtime.chat.urls")),
]
