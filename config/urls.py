from django.contrib import admin
from django.urls import include, path

from realtime.gateway.health import healthz
from realtime.gateway.monitoring import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("realtime.chat.api.urls")),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("realtime.chat.urls")),
]
