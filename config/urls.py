from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from realtime.gateway.health import healthz
from realtime.gateway.monitoring import metrics_view

urlpatterns = [
    path("admin/", admin.site.urls),
    # /api/ itself: the human-readable reference (machines read /api/schema/).
    path("api/", RedirectView.as_view(pattern_name="api-docs"), name="api-root"),
    path("api/", include("realtime.chat.api.urls")),
    # Browsers ask for /favicon.ico on pages that name no icon (the admin's, a bare 404).
    path("favicon.ico", RedirectView.as_view(url=lazy(static, str)("realtime/favicon.svg"))),
    path("healthz", healthz, name="healthz"),
    path("metrics", metrics_view, name="metrics"),
    path("", include("realtime.chat.urls")),
]
